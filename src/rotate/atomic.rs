//! Atomic file replacement: a temp file in the same directory, created with its final mode
//! (never more open than that, from the first byte) and owner, written, fsynced, linked aside
//! as `NAME.prev`, renamed over `NAME`, and the directory fsynced. A crash at any point leaves
//! either the old complete file or the new complete file under `NAME`.

use super::killpoint;
use super::owner::{group_name, user_name, Ids, OwnerError, Ownership};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Where a file goes and how it must look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub path: PathBuf,
    /// Permission bits, e.g. 0o600.
    pub mode: u32,
    /// `None` keeps the current owner of an existing file (the process's ids for a new one).
    pub owner: Option<Ownership>,
}

/// What a write did (or, for `check`, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The file did not exist.
    Created,
    /// The content changed; the old file is kept at `backup`.
    Replaced { backup: PathBuf },
    /// Same content; only mode and/or owner were corrected (`what` says which).
    Fixed { what: String },
    /// Same content, mode and owner: nothing to do.
    Unchanged,
}

impl Written {
    /// True when the file on disk changed in any way.
    pub fn changed(&self) -> bool {
        !matches!(self, Written::Unchanged)
    }
}

/// Why a file could not be written. The original file is untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum AtomicError {
    #[error("{path}: cannot {op}: {source}; {hint}")]
    Io {
        path: String,
        op: &'static str,
        source: io::Error,
        hint: String,
    },
    #[error("{path}: {source}")]
    Owner { path: String, source: OwnerError },
}

fn io_err(path: &Path, op: &'static str, source: io::Error) -> AtomicError {
    let hint = match source.kind() {
        io::ErrorKind::PermissionDenied => {
            "run as root or as a user allowed to write there and change owners".to_string()
        }
        io::ErrorKind::NotFound => "check that the directory exists".to_string(),
        _ => "the old file was left in place".to_string(),
    };
    AtomicError::Io {
        path: path.display().to_string(),
        op,
        source,
        hint,
    }
}

/// How the file on disk compares with what is wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diff {
    Missing,
    Content,
    Meta(String),
    Same,
}

/// Compares the file on disk with the wanted bytes, mode and owner (read-only; for dry runs).
pub fn diff(spec: &FileSpec, bytes: &[u8]) -> Result<Diff, AtomicError> {
    let meta = match std::fs::metadata(&spec.path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Diff::Missing),
        Err(e) => return Err(io_err(&spec.path, "stat", e)),
    };
    let current = std::fs::read(&spec.path).map_err(|e| io_err(&spec.path, "read", e))?;
    if current != bytes {
        return Ok(Diff::Content);
    }
    let want = wanted_ids(spec, Some(&meta))?;
    match meta_changes(&meta, spec.mode, want) {
        Some(what) => Ok(Diff::Meta(what)),
        None => Ok(Diff::Same),
    }
}

/// The ids a file must end with: the spec's, else the existing file's.
fn wanted_ids(spec: &FileSpec, existing: Option<&std::fs::Metadata>) -> Result<Ids, AtomicError> {
    let mut ids = match &spec.owner {
        Some(o) => o.resolve().map_err(|source| AtomicError::Owner {
            path: spec.path.display().to_string(),
            source,
        })?,
        None => Ids::default(),
    };
    if let Some(m) = existing {
        ids.uid = ids.uid.or(Some(m.uid()));
        ids.gid = ids.gid.or(Some(m.gid()));
    }
    Ok(ids)
}

/// Describes mode/owner differences, `None` when there are none.
fn meta_changes(meta: &std::fs::Metadata, mode: u32, want: Ids) -> Option<String> {
    let mut what = Vec::new();
    let have = meta.mode() & 0o7777;
    if have != mode {
        what.push(format!("mode {have:04o} → {mode:04o}"));
    }
    if let Some(u) = want.uid.filter(|u| *u != meta.uid()) {
        what.push(format!(
            "owner {} → {}",
            user_name(meta.uid()),
            user_name(u)
        ));
    }
    if let Some(g) = want.gid.filter(|g| *g != meta.gid()) {
        what.push(format!(
            "group {} → {}",
            group_name(meta.gid()),
            group_name(g)
        ));
    }
    (!what.is_empty()).then(|| what.join(", "))
}

/// Writes `bytes` to `spec.path` atomically, or reports that nothing had to change.
pub fn write_atomic(spec: &FileSpec, bytes: &[u8]) -> Result<Written, AtomicError> {
    remove_stale_temps(&spec.path);
    match diff(spec, bytes)? {
        Diff::Same => Ok(Written::Unchanged),
        Diff::Meta(what) => fix_meta(spec, what),
        Diff::Missing | Diff::Content => stage(spec, bytes)?.commit(),
    }
}

/// A file ready to be put in place: staged new content, a mode/owner fix, or nothing.
#[derive(Debug)]
pub enum Prepared {
    Stage(Staged),
    Fix(FileSpec, String),
    Keep(PathBuf),
}

/// Compares and, when the content differs, stages the new content (nothing in place yet).
/// Preparing every file of a set before committing any keeps a failure from leaving a
/// half-written set.
pub fn prepare(spec: &FileSpec, bytes: &[u8]) -> Result<Prepared, AtomicError> {
    remove_stale_temps(&spec.path);
    Ok(match diff(spec, bytes)? {
        Diff::Same => Prepared::Keep(spec.path.clone()),
        Diff::Meta(what) => Prepared::Fix(spec.clone(), what),
        Diff::Missing | Diff::Content => Prepared::Stage(stage(spec, bytes)?),
    })
}

impl Prepared {
    /// The target path.
    pub fn path(&self) -> &Path {
        match self {
            Prepared::Stage(s) => s.path(),
            Prepared::Fix(spec, _) => &spec.path,
            Prepared::Keep(p) => p,
        }
    }

    /// Puts the file in place.
    pub fn commit(self) -> Result<Written, AtomicError> {
        match self {
            Prepared::Stage(s) => s.commit(),
            Prepared::Fix(spec, what) => fix_meta(&spec, what),
            Prepared::Keep(_) => Ok(Written::Unchanged),
        }
    }
}

/// One pending rename of a set, as recorded in the journal.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Pending {
    tmp: PathBuf,
    target: PathBuf,
}

/// Commits a set of files so that a crash can only leave the old set or, after the next
/// [`roll_forward`], the new set: the staged temp files (complete and fsynced) are listed in
/// `journal` before the first rename, and the journal is removed after the last.
pub fn commit_all(
    set: Vec<Prepared>,
    journal: &Path,
) -> Result<Vec<(PathBuf, Written)>, AtomicError> {
    let pending: Vec<Pending> = set
        .iter()
        .filter_map(|p| match p {
            Prepared::Stage(s) => Some(Pending {
                tmp: s.tmp.clone(),
                target: s.spec.path.clone(),
            }),
            _ => None,
        })
        .collect();
    if pending.len() > 1 {
        let text = serde_json::to_vec(&pending).unwrap_or_default();
        let spec = FileSpec {
            path: journal.to_path_buf(),
            mode: 0o600,
            owner: None,
        };
        write_atomic(&spec, &text)?;
    }
    let mut out = Vec::new();
    for p in set {
        let path = p.path().to_path_buf();
        out.push((path, p.commit()?));
    }
    remove_journal(journal)?;
    Ok(out)
}

fn remove_journal(journal: &Path) -> Result<(), AtomicError> {
    match std::fs::remove_file(journal) {
        Ok(()) => sync_dir(&parent_of(journal)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(journal, "remove the journal", e)),
    }
}

/// Finishes a set interrupted by a crash: renames every staged file the journal lists that
/// is still there. Returns the files put in place (empty when there was no journal).
pub fn roll_forward(journal: &Path) -> Result<Vec<PathBuf>, AtomicError> {
    let text = match std::fs::read(journal) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(io_err(journal, "read the journal", e)),
    };
    let pending: Vec<Pending> = serde_json::from_slice(&text).unwrap_or_default();
    let mut done = Vec::new();
    for p in pending {
        if !p.tmp.exists() {
            continue;
        }
        backup_current(&p.target)?;
        std::fs::rename(&p.tmp, &p.target)
            .map_err(|e| io_err(&p.target, "rename into place", e))?;
        sync_dir(&parent_of(&p.target))?;
        done.push(p.target);
    }
    remove_journal(journal)?;
    Ok(done)
}

/// The journal of a set written for `anchor` (e.g. the certificate of an issue).
pub fn journal_path(anchor: &Path) -> PathBuf {
    parent_of(anchor).join(format!(".{}.rotcheck-set", file_name(anchor)))
}

/// Corrects mode and owner in place (the content is already right).
fn fix_meta(spec: &FileSpec, what: String) -> Result<Written, AtomicError> {
    let meta = std::fs::metadata(&spec.path).map_err(|e| io_err(&spec.path, "stat", e))?;
    let ids = wanted_ids(spec, Some(&meta))?;
    let f = File::open(&spec.path).map_err(|e| io_err(&spec.path, "open", e))?;
    // Tighten the mode first when it was too open, then change owners.
    f.set_permissions(std::fs::Permissions::from_mode(spec.mode))
        .map_err(|e| io_err(&spec.path, "chmod", e))?;
    std::os::unix::fs::fchown(&f, ids.uid, ids.gid).map_err(|e| io_err(&spec.path, "chown", e))?;
    f.sync_all().map_err(|e| io_err(&spec.path, "fsync", e))?;
    Ok(Written::Fixed { what })
}

/// A temp file holding the new content, fsynced, not yet in place. Dropped uncommitted, it
/// is removed.
#[derive(Debug)]
pub struct Staged {
    spec: FileSpec,
    tmp: PathBuf,
    done: bool,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn temp_path(path: &Path, tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!(
        ".{}.rotcheck-{}-{n}.{tag}",
        file_name(path),
        std::process::id()
    );
    parent_of(path).join(name)
}

/// Writes the new content to a temp file beside the target: created exclusively with the
/// final mode, owner set, content written and fsynced.
pub fn stage(spec: &FileSpec, bytes: &[u8]) -> Result<Staged, AtomicError> {
    let dir = parent_of(&spec.path);
    ensure_dir(&dir)?;
    remove_stale_temps(&spec.path);
    let existing = std::fs::metadata(&spec.path).ok();
    let ids = wanted_ids(spec, existing.as_ref())?;
    let tmp = temp_path(&spec.path, "tmp");
    let staged = Staged {
        spec: spec.clone(),
        tmp: tmp.clone(),
        done: false,
    };
    let mut f = create_exclusive(&tmp, spec.mode)?;
    std::os::unix::fs::fchown(&f, ids.uid, ids.gid).map_err(|e| io_err(&spec.path, "chown", e))?;
    killpoint::reached("temp-created", Some(&spec.path));
    write_all(&mut f, bytes, &spec.path)?;
    f.sync_all().map_err(|e| io_err(&tmp, "fsync", e))?;
    killpoint::reached("temp-written", Some(&spec.path));
    Ok(staged)
}

/// O_CREAT|O_EXCL with the final mode; the umask can only narrow it, so set it exactly
/// before any byte is written.
fn create_exclusive(tmp: &Path, mode: u32) -> Result<File, AtomicError> {
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(nix::fcntl::OFlag::O_CLOEXEC.bits())
        .open(tmp)
        .map_err(|e| io_err(tmp, "create a temp file", e))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_err(tmp, "chmod", e))?;
    Ok(f)
}

fn write_all(f: &mut File, bytes: &[u8], target: &Path) -> Result<(), AtomicError> {
    let half = bytes.len() / 2;
    f.write_all(&bytes[..half])
        .map_err(|e| io_err(target, "write", e))?;
    if std::env::var_os(killpoint::ENV).is_some() {
        f.flush().map_err(|e| io_err(target, "write", e))?;
        killpoint::reached("temp-partial", Some(target));
    }
    f.write_all(&bytes[half..])
        .map_err(|e| io_err(target, "write", e))
}

fn ensure_dir(dir: &Path) -> Result<(), AtomicError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| io_err(dir, "create the directory", e))
}

/// Removes temp files left by a killed run (their pid no longer exists).
fn remove_stale_temps(path: &Path) {
    let prefix = format!(".{}.rotcheck-", file_name(path));
    let Ok(entries) = std::fs::read_dir(parent_of(path)) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| !alive(p)) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn alive(pid: i32) -> bool {
    let p = nix::unistd::Pid::from_raw(pid);
    !matches!(
        nix::sys::signal::kill(p, None),
        Err(nix::errno::Errno::ESRCH)
    )
}

impl Staged {
    /// The target path.
    pub fn path(&self) -> &Path {
        &self.spec.path
    }

    /// Keeps the old file as `NAME.prev`, renames the temp file over `NAME`, fsyncs the
    /// directory.
    pub fn commit(mut self) -> Result<Written, AtomicError> {
        let path = self.spec.path.clone();
        let backup = backup_current(&path)?;
        killpoint::reached("backup-linked", Some(&path));
        std::fs::rename(&self.tmp, &path).map_err(|e| io_err(&path, "rename into place", e))?;
        self.done = true;
        killpoint::reached("renamed", Some(&path));
        sync_dir(&parent_of(&path))?;
        Ok(match backup {
            Some(b) => Written::Replaced { backup: b },
            None => Written::Created,
        })
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The backup name of a file: `NAME.prev`.
pub fn backup_path(path: &Path) -> PathBuf {
    parent_of(path).join(format!("{}.prev", file_name(path)))
}

/// Hard-links the current file (same inode, same mode) to `NAME.prev`, replacing any older
/// backup atomically. `None` when there was no current file.
fn backup_current(path: &Path) -> Result<Option<PathBuf>, AtomicError> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    let backup = backup_path(path);
    if same_file(path, &backup) {
        // Already linked (a run killed right after linking); rename would be a no-op.
        return Ok(Some(backup));
    }
    let tmp = temp_path(path, "prev");
    if std::fs::hard_link(path, &tmp).is_err() {
        std::fs::copy(path, &tmp).map_err(|e| io_err(path, "copy to the backup", e))?;
    }
    if let Err(e) = std::fs::rename(&tmp, &backup) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(&backup, "rename the backup", e));
    }
    Ok(Some(backup))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

fn sync_dir(dir: &Path) -> Result<(), AtomicError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, "fsync the directory", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, name: &str, mode: u32) -> FileSpec {
        FileSpec {
            path: dir.join(name),
            mode,
            owner: None,
        }
    }

    fn mode_of(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn creates_replaces_and_keeps_prev() {
        let d = tempfile::tempdir().unwrap();
        let s = spec(d.path(), "a.key", 0o600);
        assert_eq!(write_atomic(&s, b"one").unwrap(), Written::Created);
        assert_eq!(mode_of(&s.path), 0o600);
        assert_eq!(write_atomic(&s, b"one").unwrap(), Written::Unchanged);
        let w = write_atomic(&s, b"two").unwrap();
        assert_eq!(
            w,
            Written::Replaced {
                backup: d.path().join("a.key.prev")
            }
        );
        assert_eq!(std::fs::read(&s.path).unwrap(), b"two");
        assert_eq!(std::fs::read(d.path().join("a.key.prev")).unwrap(), b"one");
        assert_eq!(mode_of(&d.path().join("a.key.prev")), 0o600);
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 2, "no temp files left behind");
    }

    #[test]
    fn fixes_mode_without_rewriting() {
        let d = tempfile::tempdir().unwrap();
        let s = spec(d.path(), "a.crt", 0o644);
        std::fs::write(&s.path, b"x").unwrap();
        std::fs::set_permissions(&s.path, std::fs::Permissions::from_mode(0o666)).unwrap();
        match write_atomic(&s, b"x").unwrap() {
            Written::Fixed { what } => assert!(what.contains("0666 → 0644"), "{what}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(mode_of(&s.path), 0o644);
        assert!(!backup_path(&s.path).exists());
    }

    #[test]
    fn dropped_stage_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let s = spec(d.path(), "a.crt", 0o644);
        drop(stage(&s, b"x").unwrap());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn missing_parent_is_created() {
        let d = tempfile::tempdir().unwrap();
        let s = spec(&d.path().join("x/y"), "a.crt", 0o644);
        assert_eq!(write_atomic(&s, b"x").unwrap(), Written::Created);
    }
}
