//! Atomic file replacement through [`super::safefs`]: a temp file with a random name in the
//! target's directory (opened once, by handle), created exclusively with its final mode and
//! owner before the first byte, written, fsynced; the old file (held open, checked to be a
//! regular file) hard-linked aside as `NAME.prev`; the temp renamed over `NAME`; the directory
//! fsynced. A crash at any point leaves either the old complete file or the new complete file
//! under `NAME`. Symlinks, FIFOs, sockets, devices and directories are refused, never
//! followed, copied through, chmodded or chowned.

use super::killpoint;
use super::owner::{group_name, user_name, Ids, OwnerError, Ownership};
use super::safefs::{self, Dir, Entry, FsError, Held};
use rustix::fs::FileType;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

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
    #[error("{0}")]
    Fs(#[from] FsError),
    #[error("{path}: {source}")]
    Owner { path: String, source: OwnerError },
    #[error("{path} has {links} hard links; refused to change its mode or owner (that would change the other names too); replace it with a file of its own, then run again")]
    Linked { path: String, links: u64 },
    #[error("{journal}: lists {listed}, which is not a file of this set; refused to roll it forward and changed nothing; remove the journal if no rotcheck run wrote it")]
    Journal { journal: String, listed: String },
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
/// A target that is not a regular file is an error.
pub fn diff(spec: &FileSpec, bytes: &[u8]) -> Result<Diff, AtomicError> {
    let (dir, name) = match Dir::of_file(&spec.path, false) {
        Ok(x) => x,
        Err(FsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Diff::Missing)
        }
        Err(e) => return Err(e.into()),
    };
    diff_in(&dir, &name, spec, bytes)
}

fn diff_in(dir: &Dir, name: &OsStr, spec: &FileSpec, bytes: &[u8]) -> Result<Diff, AtomicError> {
    let Some(held) = dir.open_regular(name, "replace")? else {
        return Ok(Diff::Missing);
    };
    let entry = held.entry;
    if entry.size != bytes.len() as u64 {
        return Ok(Diff::Content);
    }
    let current = safefs::read_held(held, &spec.path, bytes.len() as u64, "the new content")?;
    if current != bytes {
        return Ok(Diff::Content);
    }
    let want = wanted_ids(spec, Some(&entry))?;
    match meta_changes(&entry, spec.mode, want) {
        Some(what) => Ok(Diff::Meta(what)),
        None => Ok(Diff::Same),
    }
}

/// The ids a file must end with: the spec's, else the existing file's.
fn wanted_ids(spec: &FileSpec, existing: Option<&Entry>) -> Result<Ids, AtomicError> {
    let mut ids = match &spec.owner {
        Some(o) => o.resolve().map_err(|source| AtomicError::Owner {
            path: spec.path.display().to_string(),
            source,
        })?,
        None => Ids::default(),
    };
    if let Some(m) = existing {
        ids.uid = ids.uid.or(Some(m.uid));
        ids.gid = ids.gid.or(Some(m.gid));
    }
    Ok(ids)
}

/// Describes mode/owner differences, `None` when there are none.
fn meta_changes(meta: &Entry, mode: u32, want: Ids) -> Option<String> {
    let mut what = Vec::new();
    if meta.mode != mode {
        what.push(format!("mode {:04o} → {mode:04o}", meta.mode));
    }
    if let Some(u) = want.uid.filter(|u| *u != meta.uid) {
        what.push(format!("owner {} → {}", user_name(meta.uid), user_name(u)));
    }
    if let Some(g) = want.gid.filter(|g| *g != meta.gid) {
        what.push(format!(
            "group {} → {}",
            group_name(meta.gid),
            group_name(g)
        ));
    }
    (!what.is_empty()).then(|| what.join(", "))
}

/// Writes `bytes` to `spec.path` atomically, or reports that nothing had to change.
pub fn write_atomic(spec: &FileSpec, bytes: &[u8]) -> Result<Written, AtomicError> {
    prepare(spec, bytes)?.commit()
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
    let (dir, name) = Dir::of_file(&spec.path, true)?;
    remove_stale_temps(&dir, &name);
    Ok(match diff_in(&dir, &name, spec, bytes)? {
        Diff::Same => Prepared::Keep(spec.path.clone()),
        Diff::Meta(what) => Prepared::Fix(spec.clone(), what),
        Diff::Missing | Diff::Content => Prepared::Stage(stage_in(dir, name, spec, bytes)?),
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
                tmp: s.dir.join(&s.tmp),
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
    let (dir, name) = match Dir::of_file(journal, false) {
        Ok(x) => x,
        Err(FsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(())
        }
        Err(e) => return Err(e.into()),
    };
    if dir.lstat(&name)?.is_none() {
        return Ok(());
    }
    dir.unlink(&name)?;
    dir.unlink(&backup_name(&name))?;
    Ok(dir.sync()?)
}

/// Finishes a set interrupted by a crash: renames every staged file the journal lists that
/// is still there. Only entries whose target is one of `targets` and whose temp file is a
/// rotcheck temp beside it are honoured (the journal lives in a directory others may own).
/// Returns the files put in place (empty when there was no journal).
pub fn roll_forward(journal: &Path, targets: &[&Path]) -> Result<Vec<PathBuf>, AtomicError> {
    let Some(text) = safefs::read_file(journal, safefs::MAX_PEM_BYTES, "a journal")? else {
        return Ok(vec![]);
    };
    let pending: Vec<Pending> = serde_json::from_slice(&text).unwrap_or_default();
    for p in &pending {
        check_pending(p, journal, targets)?;
    }
    let mut done = Vec::new();
    for p in pending {
        if finish_pending(&p)? {
            done.push(p.target);
        }
    }
    remove_journal(journal)?;
    Ok(done)
}

/// The entry names a target of the set and a rotcheck temp file in the same directory.
fn check_pending(p: &Pending, journal: &Path, targets: &[&Path]) -> Result<(), AtomicError> {
    let ok = targets.contains(&p.target.as_path())
        && p.tmp.parent() == p.target.parent()
        && match (p.tmp.file_name(), p.target.file_name()) {
            (Some(t), Some(n)) => safefs::is_temp_of(t, n) && t.to_string_lossy().ends_with(".tmp"),
            _ => false,
        };
    if ok {
        return Ok(());
    }
    Err(AtomicError::Journal {
        journal: journal.display().to_string(),
        listed: format!("{} → {}", p.tmp.display(), p.target.display()),
    })
}

/// Renames one journaled temp into place; false when it was already.
fn finish_pending(p: &Pending) -> Result<bool, AtomicError> {
    let (dir, name) = Dir::of_file(&p.target, false)?;
    let (_, tmp) = safefs::split(&p.tmp)?;
    match dir.lstat(&tmp)? {
        None => return Ok(false),
        Some(e) if e.kind != FileType::RegularFile => {
            return Err(FsError::NotRegular {
                path: p.tmp.display().to_string(),
                found: safefs::describe(e.kind),
                op: "roll forward",
            }
            .into())
        }
        Some(_) => {}
    }
    backup_current(&dir, &name)?;
    dir.rename(&tmp, &name)?;
    dir.sync()?;
    Ok(true)
}

/// The journal of a set written for `anchor` (e.g. the certificate of an issue).
pub fn journal_path(anchor: &Path) -> PathBuf {
    parent_of(anchor).join(format!(".{}.rotcheck-set", file_name(anchor)))
}

/// Corrects mode and owner on the open file (the content is already right); never by path.
fn fix_meta(spec: &FileSpec, what: String) -> Result<Written, AtomicError> {
    let (dir, name) = Dir::of_file(&spec.path, false)?;
    let held = dir
        .open_regular(&name, "change the mode and owner of")?
        .ok_or_else(|| FsError::Raced {
            path: spec.path.display().to_string(),
            op: "change the mode and owner of",
        })?;
    check_links(&dir, &name, &held, &spec.path)?;
    let ids = wanted_ids(spec, Some(&held.entry))?;
    let io = |op, source| FsError::Io {
        path: spec.path.display().to_string(),
        op,
        source,
        hint: "run as root or as a user allowed to change owners",
    };
    safefs::set_meta(&held.file, spec.mode, ids.uid, ids.gid).map_err(|e| io("chmod/chown", e))?;
    held.file.sync_all().map_err(|e| io("fsync", e))?;
    Ok(Written::Fixed { what })
}

/// A file with other hard links (besides its own `NAME.prev` after an interrupted run) is
/// refused: changing its mode or owner would change a file elsewhere.
fn check_links(dir: &Dir, name: &OsStr, held: &Held, path: &Path) -> Result<(), AtomicError> {
    let links = held.entry.nlink;
    if links <= 1 {
        return Ok(());
    }
    let prev = dir.lstat(&backup_name(name))?;
    if links == 2 && prev.is_some_and(|p| p.same_inode(&held.entry)) {
        return Ok(());
    }
    Err(AtomicError::Linked {
        path: path.display().to_string(),
        links,
    })
}

/// A temp file holding the new content, fsynced, not yet in place. Dropped uncommitted, it
/// is removed.
#[derive(Debug)]
pub struct Staged {
    spec: FileSpec,
    dir: Dir,
    name: OsString,
    tmp: OsString,
    done: bool,
}

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

/// Writes the new content to a temp file beside the target: created exclusively with the
/// final mode, owner set, content written and fsynced.
pub fn stage(spec: &FileSpec, bytes: &[u8]) -> Result<Staged, AtomicError> {
    let (dir, name) = Dir::of_file(&spec.path, true)?;
    remove_stale_temps(&dir, &name);
    stage_in(dir, name, spec, bytes)
}

fn stage_in(
    dir: Dir,
    name: OsString,
    spec: &FileSpec,
    bytes: &[u8],
) -> Result<Staged, AtomicError> {
    let existing = dir.lstat(&name)?;
    if let Some(e) = existing.filter(|e| e.kind != FileType::RegularFile) {
        return Err(FsError::NotRegular {
            path: spec.path.display().to_string(),
            found: safefs::describe(e.kind),
            op: "replace",
        }
        .into());
    }
    let ids = wanted_ids(spec, existing.as_ref())?;
    let (tmp, mut f) = dir.create_temp(&name, "tmp", spec.mode, ids.uid, ids.gid)?;
    let staged = Staged {
        spec: spec.clone(),
        dir,
        name,
        tmp,
        done: false,
    };
    killpoint::reached("temp-created", Some(&spec.path));
    write_all(&mut f, bytes, &spec.path)?;
    f.sync_all().map_err(|e| FsError::Io {
        path: spec.path.display().to_string(),
        op: "fsync",
        source: e,
        hint: "the old file was left in place",
    })?;
    killpoint::reached("temp-written", Some(&spec.path));
    Ok(staged)
}

fn write_all(f: &mut File, bytes: &[u8], target: &Path) -> Result<(), AtomicError> {
    let io = |e| FsError::Io {
        path: target.display().to_string(),
        op: "write",
        source: e,
        hint: "the old file was left in place",
    };
    let half = bytes.len() / 2;
    f.write_all(&bytes[..half]).map_err(io)?;
    if killpoint::armed() {
        f.flush().map_err(io)?;
        killpoint::reached("temp-partial", Some(target));
    }
    f.write_all(&bytes[half..]).map_err(io)?;
    Ok(())
}

/// Removes temp files of `name` left by a killed run. Callers hold the lock of the file set
/// (or the plan), so no other run is writing these names; a journaled set was rolled forward
/// before this is reached.
fn remove_stale_temps(dir: &Dir, name: &OsStr) {
    let Ok(names) = dir.names() else { return };
    for n in names.iter().filter(|n| safefs::is_temp_of(n, name)) {
        let _ = dir.unlink(n);
    }
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
        let backup = backup_current(&self.dir, &self.name)?;
        killpoint::reached("backup-linked", Some(&path));
        self.dir.rename(&self.tmp, &self.name)?;
        self.done = true;
        killpoint::reached("renamed", Some(&path));
        self.dir.sync()?;
        Ok(match backup {
            Some(b) => Written::Replaced { backup: b },
            None => Written::Created,
        })
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.dir.unlink(&self.tmp);
        }
    }
}

/// The backup name of a file: `NAME.prev`.
pub fn backup_path(path: &Path) -> PathBuf {
    parent_of(path).join(format!("{}.prev", file_name(path)))
}

fn backup_name(name: &OsStr) -> OsString {
    let mut b = name.to_os_string();
    b.push(".prev");
    b
}

/// Hard-links the current file (held open, checked regular; same inode, same mode) to
/// `NAME.prev`, replacing any older backup atomically. `None` when there was no current file.
fn backup_current(dir: &Dir, name: &OsStr) -> Result<Option<PathBuf>, AtomicError> {
    let Some(held) = dir.open_regular(name, "back up")? else {
        return Ok(None);
    };
    let backup = backup_name(name);
    dir.link_backup(name, &held, &backup)?;
    Ok(Some(dir.join(&backup)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

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

    #[test]
    fn a_symlinked_target_is_not_chmodded_or_chowned_through() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("shadow");
        std::fs::write(&victim, b"x").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = spec(d.path(), "ca_chain.pem", 0o644);
        std::os::unix::fs::symlink(&victim, &s.path).unwrap();
        let e = write_atomic(&s, b"x").unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(mode_of(&victim), 0o600);
        let e = write_atomic(&s, b"other").unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"x");
    }

    #[test]
    fn a_hard_linked_target_keeps_its_mode() {
        let d = tempfile::tempdir().unwrap();
        let s = spec(d.path(), "a.crt", 0o644);
        std::fs::write(&s.path, b"x").unwrap();
        std::fs::set_permissions(&s.path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::hard_link(&s.path, d.path().join("elsewhere")).unwrap();
        let e = write_atomic(&s, b"x").unwrap_err();
        assert!(matches!(e, AtomicError::Linked { links: 2, .. }), "{e}");
        assert_eq!(mode_of(&d.path().join("elsewhere")), 0o600);
    }

    #[test]
    fn roll_forward_honours_only_the_sets_own_temps() {
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join("a.key");
        let journal = journal_path(&key);
        let planted = serde_json::json!([{"tmp": d.path().join("evil"), "target": "/etc/passwd"}]);
        std::fs::write(&journal, planted.to_string()).unwrap();
        let e = roll_forward(&journal, &[key.as_path()]).unwrap_err();
        assert!(matches!(e, AtomicError::Journal { .. }), "{e}");
    }

    #[test]
    fn a_fifo_target_is_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let s = spec(d.path(), "a.key", 0o600);
        nix::unistd::mkfifo(&s.path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = write_atomic(&s, b"k").unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        let meta = std::fs::symlink_metadata(&s.path).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o700);
    }
}
