//! Bounded reads of regular files. Every file rotcheck reads for a check, a suite or a config
//! goes through here: a FIFO, a device, a socket or a directory is refused with its type named
//! (opening it cannot block: the open is non-blocking), and at most a per-use cap is read.

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use std::fs::{File, Metadata, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

const MIB: u64 = 1024 * 1024;

/// Suite files (`lint -c`, `gate -c`, `serve -c`).
pub const SUITE_CAP: u64 = 4 * MIB;
/// Certificate, chain, bundle and private key PEM files.
pub const PEM_CAP: u64 = 4 * MIB;
/// The suite's `env_file`.
pub const ENV_FILE_CAP: u64 = MIB;
/// `serve --web-config`.
pub const WEB_CONFIG_CAP: u64 = MIB;
/// How much of the end of a log file is read (a log may be any size; only its tail is read).
pub const LOG_TAIL_CAP: u64 = 4 * MIB;

/// Why a file could not be read. Paths are named; the content never is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: file not found; expected it to exist (check the path)")]
    NotFound { path: String },
    #[error("{path}: permission denied reading it; run as a user that may read it, or fix its owner/mode")]
    PermissionDenied { path: String },
    #[error("{path}: is {kind}; expected a regular file (point the setting at the file itself)")]
    NotRegular { path: String, kind: &'static str },
    #[error("{path}: larger than {} (the limit for {what}); expected a much smaller file (is it the right one?)", mib(*.cap))]
    TooLarge {
        path: String,
        cap: u64,
        what: &'static str,
    },
    #[error("{path}: not UTF-8 text; expected {what} in UTF-8")]
    NotText { path: String, what: &'static str },
    #[error("{path}: cannot read: {detail}")]
    Io { path: String, detail: String },
}

/// `4 MiB`, or bytes below one MiB.
fn mib(bytes: u64) -> String {
    if bytes >= MIB && bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

impl ReadError {
    /// Stable reason token.
    pub fn class(&self) -> &'static str {
        match self {
            ReadError::NotFound { .. } => "not_found",
            ReadError::PermissionDenied { .. } => "permission_denied",
            ReadError::NotRegular { .. } => "not_regular_file",
            ReadError::TooLarge { .. } => "too_large",
            ReadError::NotText { .. } => "not_text",
            ReadError::Io { .. } => "read_failed",
        }
    }

    /// The message without the leading `path: `, for callers that name the path themselves.
    pub fn detail(&self) -> String {
        let text = self.to_string();
        let path = match self {
            ReadError::NotFound { path }
            | ReadError::PermissionDenied { path }
            | ReadError::NotRegular { path, .. }
            | ReadError::TooLarge { path, .. }
            | ReadError::NotText { path, .. }
            | ReadError::Io { path, .. } => path,
        };
        match text
            .strip_prefix(path.as_str())
            .and_then(|t| t.strip_prefix(": "))
        {
            Some(rest) => rest.to_string(),
            None => text,
        }
    }

    fn io(path: &Path, e: &std::io::Error) -> Self {
        let path = path.display().to_string();
        match e.kind() {
            std::io::ErrorKind::NotFound => ReadError::NotFound { path },
            std::io::ErrorKind::PermissionDenied => ReadError::PermissionDenied { path },
            _ => ReadError::Io {
                path,
                detail: e.to_string(),
            },
        }
    }
}

/// What a non-regular file is, in words (`a FIFO`, `a character device`); `None` when regular.
pub fn irregular_kind(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    let kind = if t.is_file() {
        return None;
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Some(kind)
}

/// Opens a regular file for reading; anything else is refused before a byte is read.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), ReadError> {
    // Refuse by path first so devices are normally never opened at all.
    let before = std::fs::metadata(path).map_err(|e| ReadError::io(path, &e))?;
    refuse_irregular(path, &before)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(path)
        .map_err(|e| ReadError::io(path, &e))?;
    // The path may have been swapped since: judge the file actually opened.
    let meta = file.metadata().map_err(|e| ReadError::io(path, &e))?;
    refuse_irregular(path, &meta)?;
    blocking(&file).map_err(|e| ReadError::io(path, &e))?;
    Ok((file, meta))
}

fn refuse_irregular(path: &Path, meta: &Metadata) -> Result<(), ReadError> {
    match irregular_kind(meta) {
        None => Ok(()),
        Some(kind) => Err(ReadError::NotRegular {
            path: path.display().to_string(),
            kind,
        }),
    }
}

/// Clears `O_NONBLOCK` (it only guarded the open).
fn blocking(file: &File) -> std::io::Result<()> {
    let flags = fcntl(file, FcntlArg::F_GETFL)?;
    let flags = OFlag::from_bits_truncate(flags) - OFlag::O_NONBLOCK;
    fcntl(file, FcntlArg::F_SETFL(flags))?;
    Ok(())
}

/// Reads a whole regular file of at most `cap` bytes; `what` names the use in errors.
pub fn read(path: &Path, cap: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
    let too_large = || ReadError::TooLarge {
        path: path.display().to_string(),
        cap,
        what,
    };
    let (file, meta) = open_regular(path)?;
    if meta.len() > cap {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    // One byte over the cap tells a file that grew since the fstat.
    file.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ReadError::io(path, &e))?;
    if buf.len() as u64 > cap {
        return Err(too_large());
    }
    Ok(buf)
}

/// Reads a whole regular file that must be UTF-8 text.
pub fn read_text(path: &Path, cap: u64, what: &'static str) -> Result<String, ReadError> {
    String::from_utf8(read(path, cap, what)?).map_err(|_| ReadError::NotText {
        path: path.display().to_string(),
        what,
    })
}

/// Reads the last `cap` bytes of a regular file (for logs, which may be any size).
pub fn read_tail(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let (mut file, meta) = open_regular(path)?;
    file.seek(SeekFrom::Start(meta.len().saturating_sub(cap)))
        .map_err(|e| ReadError::io(path, &e))?;
    let mut buf = Vec::new();
    file.take(cap)
        .read_to_end(&mut buf)
        .map_err(|e| ReadError::io(path, &e))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_fifos_are_refused_by_type() {
        let e = read(Path::new("/dev/zero"), PEM_CAP, "a PEM file").unwrap_err();
        assert_eq!(
            e,
            ReadError::NotRegular {
                path: "/dev/zero".into(),
                kind: "a character device"
            }
        );
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = read(&fifo, PEM_CAP, "a PEM file").unwrap_err();
        assert_eq!(e.class(), "not_regular_file");
        assert!(e.to_string().contains("is a FIFO"), "{e}");
        let e = read(dir.path(), PEM_CAP, "a PEM file").unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }

    #[test]
    fn the_cap_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, vec![b'a'; 100]).unwrap();
        assert_eq!(read(&f, 100, "a test").unwrap().len(), 100);
        let e = read(&f, 99, "a test").unwrap_err();
        assert_eq!(e.class(), "too_large");
        assert!(e
            .to_string()
            .contains("larger than 99 bytes (the limit for a test)"));
        assert_eq!(read_tail(&f, 10).unwrap().len(), 10);
    }

    #[test]
    fn text_must_be_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"a: \xff\n").unwrap();
        let e = read_text(&f, 100, "a web config").unwrap_err();
        assert_eq!(e.detail(), "not UTF-8 text; expected a web config in UTF-8");
    }
}
