//! Every file operation of `rotate` on a target, state, lock, audit or pid file: relative to
//! an open directory handle (openat-style), never following a symlink in the last component,
//! regular files only, reads capped. Temp files get random names and their final mode and
//! owner before the first byte; backups are hard links of the file the tool holds open.
//!
//! Directories are opened component by component from `/` with `O_DIRECTORY|O_NOFOLLOW`
//! (missing ones created with `mkdirat`); a symlink on the way is followed only when root
//! owns it and the directory holding it is root's and writable by nobody else. Every later
//! operation uses the final handle, so renaming or replacing the path afterwards changes
//! nothing.

use ring::rand::SecureRandom;
use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags, CWD};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// Largest key, certificate, chain or journal `rotate` reads.
pub const MAX_PEM_BYTES: u64 = 1024 * 1024;
/// Largest state file read.
pub const MAX_STATE_BYTES: u64 = 8 * 1024 * 1024;
/// Largest pid or lock file read.
pub const MAX_SMALL_BYTES: u64 = 4096;

/// Why a file operation was refused or failed. Nothing was changed unless the text says so.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{path}: cannot {op}: {source}; {hint}")]
    Io {
        path: String,
        op: &'static str,
        #[source]
        source: io::Error,
        hint: &'static str,
    },
    #[error("{path} is {found}, expected a regular file; refused to {op} it and changed nothing; replace it with a regular file or remove it, then run again")]
    NotRegular {
        path: String,
        found: &'static str,
        op: &'static str,
    },
    #[error(
        "{path} is {found}, expected a directory; refused to use it and changed nothing; {hint}"
    )]
    BadDir {
        path: String,
        found: String,
        hint: &'static str,
    },
    #[error("{path} is {size} bytes, more than the {cap} bytes {what} may have; check that this is the right file")]
    TooBig {
        path: String,
        size: u64,
        cap: u64,
        what: &'static str,
    },
    #[error("{path} was replaced by another process while rotcheck was about to {op} it; nothing was changed; find out who writes there, then run again")]
    Raced { path: String, op: &'static str },
    #[error("{path}: another rotcheck run has held the lock for {}; wait for it to finish (or find the process with `fuser {path}`), then run again", crate::human::duration(*.waited))]
    Busy { path: String, waited: Duration },
}

fn io_err(path: &Path, op: &'static str, source: io::Error) -> FsError {
    let hint = match source.kind() {
        io::ErrorKind::PermissionDenied => {
            "run as root or as a user allowed to write there and change owners"
        }
        io::ErrorKind::NotFound => "check that the directory exists",
        _ => "the old file was left in place",
    };
    FsError::Io {
        path: path.display().to_string(),
        op,
        source,
        hint,
    }
}

fn errno(path: &Path, op: &'static str, e: rustix::io::Errno) -> FsError {
    io_err(path, op, e.into())
}

/// What an lstat found at a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub kind: FileType,
    pub dev: u64,
    pub ino: u64,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
    pub size: u64,
    pub nlink: u64,
}

impl Entry {
    // The widths of `stat` fields differ between targets; the casts are no-ops on some.
    #[allow(clippy::unnecessary_cast)]
    fn of(st: &rustix::fs::Stat) -> Entry {
        Entry {
            kind: FileType::from_raw_mode(st.st_mode as _),
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode as u32 & 0o7777,
            size: st.st_size as u64,
            nlink: st.st_nlink as u64,
        }
    }

    /// Same device and inode.
    pub fn same_inode(&self, other: &Entry) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// A file type in words, for messages.
pub fn describe(kind: FileType) -> &'static str {
    match kind {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO (named pipe)",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "a file of unknown type",
    }
}

/// An open directory: every operation is relative to its handle.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// A regular file the tool holds open, with what fstat said about it.
#[derive(Debug)]
pub struct Held {
    pub file: File,
    pub entry: Entry,
}

/// Splits a file path into its directory and a plain last component.
pub fn split(path: &Path) -> Result<(PathBuf, OsString), FsError> {
    let name = path.file_name().filter(|n| !n.is_empty());
    let Some(name) = name else {
        return Err(FsError::BadDir {
            path: path.display().to_string(),
            found: "a path without a file name".into(),
            hint: "give the path of a file",
        });
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_os_string()))
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY);

impl Dir {
    /// Opens a directory component by component from `/` (or the working directory),
    /// creating missing ones (mode 0755) when `create`. No component is followed if it is a
    /// symlink, unless root owns the link and the directory holding it (and only root can
    /// write there); see [`step`].
    pub fn open(path: &Path, create: bool) -> Result<Dir, FsError> {
        let start = if path.is_absolute() { "/" } else { "." };
        let mut fd = rustix::fs::openat(CWD, start, DIR_FLAGS, Mode::empty())
            .map_err(|e| errno(path, "open the directory", e))?;
        let mut seen = PathBuf::from(start);
        for c in path.components() {
            let name: &OsStr = match c {
                Component::Normal(n) => n,
                Component::ParentDir => OsStr::new(".."),
                _ => continue,
            };
            seen.push(name);
            fd = step(&fd, name, &seen, create)?;
        }
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The directory of a file path and the file's name in it.
    pub fn of_file(path: &Path, create: bool) -> Result<(Dir, OsString), FsError> {
        let (dir, name) = split(path)?;
        Ok((Dir::open(&dir, create)?, name))
    }

    /// The directory's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The full path of a name in this directory, for messages.
    pub fn join(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    /// What is at `name`, without following a symlink; `None` when nothing is.
    pub fn lstat(&self, name: &OsStr) -> Result<Option<Entry>, FsError> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Entry::of(&st))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(errno(&self.join(name), "stat", e)),
        }
    }

    /// The directory's own identity.
    pub fn stat(&self) -> Result<Entry, FsError> {
        rustix::fs::fstat(&self.fd)
            .map(|st| Entry::of(&st))
            .map_err(|e| errno(&self.path, "stat the directory", e))
    }

    /// Opens an existing regular file read-only; `None` when the name is free. Refuses
    /// symlinks, FIFOs, sockets, devices and directories without blocking on any of them.
    pub fn open_regular(&self, name: &OsStr, op: &'static str) -> Result<Option<Held>, FsError> {
        self.open_checked(name, OFlags::RDONLY, None, op)
    }

    /// Opens (creating, with `mode`, when missing) a regular file with `flags` added.
    pub fn open_or_create(
        &self,
        name: &OsStr,
        flags: OFlags,
        mode: u32,
        op: &'static str,
    ) -> Result<Held, FsError> {
        let held = self.open_checked(name, flags, Some(mode), op)?;
        held.ok_or_else(|| io_err(&self.join(name), op, io::ErrorKind::NotFound.into()))
    }

    fn open_checked(
        &self,
        name: &OsStr,
        flags: OFlags,
        create: Option<u32>,
        op: &'static str,
    ) -> Result<Option<Held>, FsError> {
        let path = self.join(name);
        let before = self.lstat(name)?;
        match before {
            Some(e) if e.kind != FileType::RegularFile => {
                return Err(not_regular(&path, e.kind, op))
            }
            None if create.is_none() => return Ok(None),
            _ => {}
        }
        let mut flags = flags | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        flags |= OFlags::NOCTTY;
        if before.is_none() {
            flags |= OFlags::CREATE;
        }
        let mode = Mode::from_raw_mode(create.unwrap_or(0) as _);
        let fd = match rustix::fs::openat(&self.fd, name, flags, mode) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) if create.is_none() => return Ok(None),
            Err(rustix::io::Errno::LOOP) => return Err(not_regular(&path, FileType::Symlink, op)),
            Err(e) => return Err(errno(&path, op, e)),
        };
        let held = hold(fd, &path, op)?;
        if before.is_some_and(|b| !b.same_inode(&held.entry)) {
            return Err(FsError::Raced {
                path: path.display().to_string(),
                op,
            });
        }
        Ok(Some(held))
    }

    /// Reads a regular file, at most `cap` bytes; `None` when the name is free.
    pub fn read(
        &self,
        name: &OsStr,
        cap: u64,
        what: &'static str,
    ) -> Result<Option<Vec<u8>>, FsError> {
        let Some(held) = self.open_regular(name, "read")? else {
            return Ok(None);
        };
        read_held(held, &self.join(name), cap, what).map(Some)
    }

    /// Creates a new temp file `.NAME.rotcheck-<random>.TAG` with `mode` and the owner set
    /// before anything is written.
    pub fn create_temp(
        &self,
        name: &OsStr,
        tag: &str,
        mode: u32,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<(OsString, File), FsError> {
        let flags = OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::EXCL
            | OFlags::NOFOLLOW
            | OFlags::CLOEXEC
            | OFlags::NOCTTY;
        for _ in 0..8 {
            let tmp = temp_name(name, tag)?;
            let path = self.join(&tmp);
            match rustix::fs::openat(&self.fd, &tmp, flags, Mode::from_raw_mode(mode as _)) {
                Ok(fd) => {
                    let f = File::from(fd);
                    if let Err(e) = set_meta(&f, mode, uid, gid) {
                        let _ = rustix::fs::unlinkat(&self.fd, &tmp, AtFlags::empty());
                        return Err(io_err(&path, "set the temp file's owner and mode", e));
                    }
                    return Ok((tmp, f));
                }
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(errno(&path, "create a temp file", e)),
            }
        }
        Err(io_err(
            &self.join(name),
            "create a temp file",
            io::ErrorKind::AlreadyExists.into(),
        ))
    }

    /// Renames `from` over `to` inside this directory (a symlink at `to` is replaced, not
    /// followed).
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> Result<(), FsError> {
        rustix::fs::renameat(&self.fd, from, &self.fd, to)
            .map_err(|e| errno(&self.join(to), "rename into place", e))
    }

    /// Removes a name (a symlink is removed itself, never its target).
    pub fn unlink(&self, name: &OsStr) -> Result<(), FsError> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(errno(&self.join(name), "remove", e)),
        }
    }

    /// Makes the directory's entries durable.
    pub fn sync(&self) -> Result<(), FsError> {
        rustix::fs::fsync(&self.fd).map_err(|e| errno(&self.path, "fsync the directory", e))
    }

    /// Hard-links the file held open as `name` to `backup`, replacing whatever `backup` was
    /// (a symlink or FIFO there is replaced, never followed; a directory is refused). The link
    /// is made under a random name first and checked to be the held inode.
    pub fn link_backup(&self, name: &OsStr, held: &Held, backup: &OsStr) -> Result<(), FsError> {
        let bpath = self.join(backup);
        match self.lstat(backup)? {
            Some(e) if e.same_inode(&held.entry) => return Ok(()),
            Some(e) if e.kind == FileType::Directory => {
                return Err(not_regular(&bpath, e.kind, "replace the backup"))
            }
            _ => {}
        }
        let tmp = temp_name(name, "prev")?;
        rustix::fs::linkat(&self.fd, name, &self.fd, &tmp, AtFlags::empty())
            .map_err(|e| errno(&self.join(name), "link the backup", e))?;
        let linked = self.lstat(&tmp)?;
        if !linked.is_some_and(|l| l.same_inode(&held.entry)) {
            let _ = self.unlink(&tmp);
            return Err(FsError::Raced {
                path: self.join(name).display().to_string(),
                op: "back up",
            });
        }
        let renamed = rustix::fs::renameat(&self.fd, &tmp, &self.fd, backup)
            .map_err(|e| errno(&bpath, "rename the backup", e));
        let _ = self.unlink(&tmp);
        renamed
    }

    /// The names in this directory (read through the handle).
    pub fn names(&self) -> Result<Vec<OsString>, FsError> {
        let list = rustix::fs::Dir::read_from(&self.fd)
            .map_err(|e| errno(&self.path, "list the directory", e))?;
        Ok(list
            .flatten()
            .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
            .collect())
    }

    /// Takes an exclusive flock on the directory itself, waiting up to `wait`. Held until
    /// the returned guard (which owns its own handle) is dropped.
    pub fn lock(&self, wait: Duration, on_wait: &mut dyn FnMut()) -> Result<DirLock, FsError> {
        let fd = rustix::fs::openat(&self.fd, ".", DIR_FLAGS, Mode::empty())
            .map_err(|e| errno(&self.path, "open the directory", e))?;
        let start = Instant::now();
        let mut told = false;
        loop {
            match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(DirLock { _fd: fd }),
                Err(rustix::io::Errno::WOULDBLOCK) if start.elapsed() < wait => {
                    if !told {
                        on_wait();
                        told = true;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Err(FsError::Busy {
                        path: self.path.display().to_string(),
                        waited: wait,
                    })
                }
                Err(e) => return Err(errno(&self.path, "lock the directory", e)),
            }
        }
    }
}

/// An exclusive lock on a directory, released when dropped (or the process dies).
#[derive(Debug)]
pub struct DirLock {
    _fd: OwnedFd,
}

/// Locks the directories of `files` (each once, in a fixed order, so two runs cannot
/// deadlock), waiting up to `wait` for each.
pub fn lock_dirs(
    files: &[&Path],
    wait: Duration,
    on_wait: &mut dyn FnMut(&Path),
) -> Result<Vec<DirLock>, FsError> {
    let mut dirs = Vec::new();
    for f in files {
        let (d, _) = Dir::of_file(f, true)?;
        let id = d.stat()?;
        if !dirs
            .iter()
            .any(|(i, _): &((u64, u64), Dir)| *i == (id.dev, id.ino))
        {
            dirs.push(((id.dev, id.ino), d));
        }
    }
    dirs.sort_by_key(|(i, _)| *i);
    dirs.iter()
        .map(|(_, d)| d.lock(wait, &mut || on_wait(d.path())))
        .collect()
}

/// Opens one component below `parent` with `O_NOFOLLOW`, creating it when missing and
/// `create`. A symlink is followed only when root owns it and `parent` is owned by root and
/// not group- or world-writable (so nobody else could have planted or swapped it).
fn step(parent: &OwnedFd, name: &OsStr, seen: &Path, create: bool) -> Result<OwnedFd, FsError> {
    let flags = DIR_FLAGS | OFlags::NOFOLLOW;
    match rustix::fs::openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => return Ok(fd),
        Err(rustix::io::Errno::NOENT) if create => {
            match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(errno(seen, "create the directory", e)),
            }
            return rustix::fs::openat(parent, name, flags, Mode::empty())
                .map_err(|e| errno(seen, "open the directory", e));
        }
        Err(rustix::io::Errno::LOOP) | Err(rustix::io::Errno::NOTDIR) => {}
        Err(e) => return Err(errno(seen, "open the directory", e)),
    }
    let link = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
        .map(|s| Entry::of(&s))
        .map_err(|e| errno(seen, "stat the directory", e))?;
    if link.kind != FileType::Symlink {
        return Err(FsError::BadDir {
            path: seen.display().to_string(),
            found: describe(link.kind).into(),
            hint: "give the directory the files belong in",
        });
    }
    let holder = rustix::fs::fstat(parent)
        .map(|s| Entry::of(&s))
        .map_err(|e| errno(seen, "stat the directory", e))?;
    if link.uid != 0 || holder.uid != 0 || holder.mode & 0o022 != 0 {
        return Err(FsError::BadDir {
            path: seen.display().to_string(),
            found: format!(
                "a symbolic link owned by uid {} in a directory owned by uid {} (mode {:04o})",
                link.uid, holder.uid, holder.mode
            ),
            hint:
                "give the real path (only root-owned links in root-only directories are followed)",
        });
    }
    rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty())
        .map_err(|e| errno(seen, "open the directory", e))
}

fn not_regular(path: &Path, kind: FileType, op: &'static str) -> FsError {
    FsError::NotRegular {
        path: path.display().to_string(),
        found: describe(kind),
        op,
    }
}

/// Checks that an opened fd is a regular file and wraps it.
fn hold(fd: OwnedFd, path: &Path, op: &'static str) -> Result<Held, FsError> {
    let st = rustix::fs::fstat(&fd).map_err(|e| errno(path, "stat", e))?;
    let entry = Entry::of(&st);
    if entry.kind != FileType::RegularFile {
        return Err(not_regular(path, entry.kind, op));
    }
    Ok(Held {
        file: File::from(fd),
        entry,
    })
}

/// Reads a held file, refusing more than `cap` bytes.
pub fn read_held(
    held: Held,
    path: &Path,
    cap: u64,
    what: &'static str,
) -> Result<Vec<u8>, FsError> {
    let too_big = |size| FsError::TooBig {
        path: path.display().to_string(),
        size,
        cap,
        what,
    };
    if held.entry.size > cap {
        return Err(too_big(held.entry.size));
    }
    let mut bytes = Vec::new();
    held.file
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_err(path, "read", e))?;
    if bytes.len() as u64 > cap {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Reads a regular file by path (see [`Dir::read`]).
pub fn read_file(path: &Path, cap: u64, what: &'static str) -> Result<Option<Vec<u8>>, FsError> {
    let (dir, name) = match Dir::of_file(path, false) {
        Ok(x) => x,
        Err(FsError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    dir.read(&name, cap, what)
}

/// Reads an input file the administrator names (a suite, a CA file given to `cert-role`):
/// symlinks are followed, but only a regular file is opened (`stat` first, then
/// `O_NONBLOCK`, then `fstat` of the same inode), and at most `cap` bytes are read.
pub fn read_input(path: &Path, cap: u64, what: &'static str) -> Result<Option<Vec<u8>>, FsError> {
    let before = match rustix::fs::statat(CWD, path, AtFlags::empty()) {
        Ok(st) => Entry::of(&st),
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(errno(path, "stat", e)),
    };
    if before.kind != FileType::RegularFile {
        return Err(not_regular(path, before.kind, "read"));
    }
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd =
        rustix::fs::openat(CWD, path, flags, Mode::empty()).map_err(|e| errno(path, "open", e))?;
    let held = hold(fd, path, "read")?;
    if !held.entry.same_inode(&before) {
        return Err(FsError::Raced {
            path: path.display().to_string(),
            op: "read",
        });
    }
    read_held(held, path, cap, what).map(Some)
}

/// Sets mode and owner on an open file (never by path): mode first, then owner.
pub fn set_meta(f: &File, mode: u32, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    rustix::fs::fchmod(f.as_fd(), Mode::from_raw_mode(mode as _))?;
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::fchown(f, uid, gid)?;
    }
    // fchown may clear set-id bits; the wanted mode is set again.
    rustix::fs::fchmod(f.as_fd(), Mode::from_raw_mode(mode as _))?;
    Ok(())
}

/// `.NAME.rotcheck-<16 random hex>.TAG`.
fn temp_name(name: &OsStr, tag: &str) -> Result<OsString, FsError> {
    let mut r = [0u8; 8];
    ring::rand::SystemRandom::new().fill(&mut r).map_err(|_| {
        io_err(
            Path::new(name),
            "draw a random temp name",
            io::Error::other("the system random generator failed"),
        )
    })?;
    let mut s = OsString::from(".");
    s.push(name);
    s.push(format!(".rotcheck-{}.{tag}", crate::certs::hex(&r)));
    Ok(s)
}

/// True for a name [`temp_name`] made for `name` (any tag).
pub fn is_temp_of(candidate: &OsStr, name: &OsStr) -> bool {
    let mut prefix = b".".to_vec();
    prefix.extend_from_slice(name.as_bytes());
    prefix.extend_from_slice(b".rotcheck-");
    let c = candidate.as_bytes();
    c.starts_with(&prefix) && !c.contains(&b'/')
}

/// Writes all bytes to a file opened for append or write and fsyncs it.
pub fn write_synced(f: &mut File, bytes: &[u8], path: &Path) -> Result<(), FsError> {
    f.write_all(bytes).map_err(|e| io_err(path, "write", e))?;
    f.sync_data().map_err(|e| io_err(path, "fsync", e))
}

/// Replaces a file with new content (no backup): a random temp file with the existing file's
/// permission bits (`mode` for a new file), renamed over the target; refuses a non-regular
/// target. For reports written with `--output`.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FsError> {
    let (dir, name) = Dir::of_file(path, false)?;
    let existing = dir.lstat(&name)?;
    if let Some(e) = existing.filter(|e| e.kind != FileType::RegularFile) {
        return Err(not_regular(path, e.kind, "replace"));
    }
    let mode = existing.map(|e| e.mode & 0o777).unwrap_or(mode);
    let (tmp, mut f) = dir.create_temp(&name, "tmp", mode, None, None)?;
    let written = write_synced(&mut f, bytes, path).and_then(|_| dir.rename(&tmp, &name));
    if written.is_err() {
        let _ = dir.unlink(&tmp);
    }
    written?;
    dir.sync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn refuses_symlinks_and_fifos_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(d.path().join("secret"), d.path().join("link")).unwrap();
        nix::unistd::mkfifo(&d.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let dir = Dir::open(d.path(), false).unwrap();
        for n in ["link", "fifo"] {
            let e = dir.read(OsStr::new(n), 10, "a test file").unwrap_err();
            assert!(matches!(e, FsError::NotRegular { .. }), "{n}: {e}");
        }
        let e = Dir::open(d.path(), false)
            .unwrap()
            .open_or_create(OsStr::new("fifo"), OFlags::RDWR, 0o600, "lock")
            .unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        assert!(dir.read(OsStr::new("none"), 10, "x").unwrap().is_none());
    }

    #[test]
    fn caps_reads() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("big"), vec![b'a'; 100]).unwrap();
        let dir = Dir::open(d.path(), false).unwrap();
        let e = dir.read(OsStr::new("big"), 10, "a test file").unwrap_err();
        assert!(matches!(e, FsError::TooBig { size: 100, .. }), "{e}");
    }

    #[test]
    fn temps_are_random_and_exclusive_with_final_mode() {
        let d = tempfile::tempdir().unwrap();
        let dir = Dir::open(d.path(), false).unwrap();
        let (a, _) = dir
            .create_temp(OsStr::new("k"), "tmp", 0o600, None, None)
            .unwrap();
        let (b, _) = dir
            .create_temp(OsStr::new("k"), "tmp", 0o600, None, None)
            .unwrap();
        assert_ne!(a, b);
        assert!(is_temp_of(&a, OsStr::new("k")));
        let m = std::fs::metadata(d.path().join(&a)).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o600);
    }

    #[test]
    fn backup_replaces_a_planted_symlink_without_following_it() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"victim").unwrap();
        std::fs::write(d.path().join("a.key"), b"old").unwrap();
        std::os::unix::fs::symlink(&victim, d.path().join("a.key.prev")).unwrap();
        let dir = Dir::open(d.path(), false).unwrap();
        let held = dir
            .open_regular(OsStr::new("a.key"), "back up")
            .unwrap()
            .unwrap();
        dir.link_backup(OsStr::new("a.key"), &held, OsStr::new("a.key.prev"))
            .unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"victim");
        let prev = std::fs::symlink_metadata(d.path().join("a.key.prev")).unwrap();
        assert!(prev.is_file());
        assert_eq!(std::fs::read(d.path().join("a.key.prev")).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_user_symlinked_directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("real")).unwrap();
        std::os::unix::fs::symlink(d.path().join("real"), d.path().join("link")).unwrap();
        std::os::unix::fs::lchown(d.path().join("link"), Some(65534), None).unwrap();
        let e = Dir::open(&d.path().join("link"), false).unwrap_err();
        assert!(
            e.to_string().contains("symbolic link owned by uid 65534"),
            "{e}"
        );
        // Further up the path too, and nothing is created through it.
        let e = Dir::open(&d.path().join("link/sub"), true).unwrap_err();
        assert!(matches!(e, FsError::BadDir { .. }), "{e}");
        assert!(!d.path().join("real/sub").exists());
        let made = Dir::open(&d.path().join("real/a/b"), true).unwrap();
        assert!(made.stat().unwrap().kind == FileType::Directory);
    }

    #[test]
    fn dir_lock_is_exclusive() {
        let d = tempfile::tempdir().unwrap();
        let dir = Dir::open(d.path(), false).unwrap();
        let held = dir.lock(Duration::ZERO, &mut || {}).unwrap();
        let e = dir.lock(Duration::ZERO, &mut || {}).unwrap_err();
        assert!(matches!(e, FsError::Busy { .. }), "{e}");
        drop(held);
        assert!(dir.lock(Duration::ZERO, &mut || {}).is_ok());
    }

    #[test]
    fn replace_refuses_a_symlink_and_keeps_the_mode() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"v").unwrap();
        let link = d.path().join("report.json");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = replace(&link, b"new", 0o644).unwrap_err();
        assert!(matches!(e, FsError::NotRegular { .. }), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"v");
        let out = d.path().join("out.json");
        std::fs::write(&out, b"old").unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o600)).unwrap();
        replace(&out, b"new", 0o644).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        assert_eq!(std::fs::metadata(&out).unwrap().mode() & 0o7777, 0o600);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 3);
    }

    #[test]
    fn inputs_follow_symlinks_but_refuse_fifos() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("ca.pem"), b"pem").unwrap();
        std::os::unix::fs::symlink(d.path().join("ca.pem"), d.path().join("link")).unwrap();
        let got = read_input(&d.path().join("link"), 10, "a CA file").unwrap();
        assert_eq!(got.unwrap(), b"pem");
        nix::unistd::mkfifo(&d.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = read_input(&d.path().join("fifo"), 10, "a CA file").unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        let e = read_input(Path::new("/dev/zero"), 10, "a CA file").unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
    }
}
