//! Existence, mode, owner and group of one file entry; records the entry's `FileFacts`.

use super::Entry;
use crate::certs::FileError;
use crate::model::{Assertion, FileFacts, Outcome, Status};
use crate::suite::Mode;
use nix::unistd::{Gid, Group, Uid, User};
use std::os::unix::fs::MetadataExt;

/// What `stat` (following symlinks) says about a file.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
}

/// Checks existence, then mode/owner/group. Returns whether the file is there.
pub fn check(e: &Entry, out: &mut Outcome) -> bool {
    let stat = stat(e);
    out.facts.files.push(facts(e, stat.as_ref().ok()));
    match (stat, e.spec.exists) {
        (Ok(m), true) => {
            out.assertions.push(present(e));
            attributes(e, &m, out);
            true
        }
        (Ok(_), false) => {
            out.assertions.push(unexpected(e));
            true
        }
        (Err(FileError::NotFound { .. }), false) => {
            out.assertions.push(Assertion::pass(
                &e.name("exists"),
                format!("{} is absent, as expected", e.label),
            ));
            false
        }
        (Err(err), _) => {
            out.assertions.push(stat_failed(e, &err));
            false
        }
    }
}

fn stat(e: &Entry) -> Result<Meta, FileError> {
    let m = std::fs::metadata(&e.path).map_err(|err| classify(e, &err))?;
    Ok(Meta {
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
    })
}

/// Classifies an I/O error like `certs::read_limited` does.
fn classify(e: &Entry, err: &std::io::Error) -> FileError {
    let path = e.path.display().to_string();
    match err.kind() {
        std::io::ErrorKind::NotFound => FileError::NotFound { path },
        std::io::ErrorKind::PermissionDenied => FileError::PermissionDenied { path },
        _ => FileError::Unreadable {
            path,
            detail: err.to_string(),
        },
    }
}

/// A missing file fails its existence expectation; any other stat problem is an error.
fn stat_failed(e: &Entry, err: &FileError) -> Assertion {
    let status = match err {
        FileError::NotFound { .. } => Status::Fail,
        _ => Status::Error,
    };
    Assertion::not_ok(&e.name("exists"), status, err.class(), err.to_string())
}

fn present(e: &Entry) -> Assertion {
    Assertion::pass(&e.name("exists"), format!("{} exists", e.path.display()))
}

fn unexpected(e: &Entry) -> Assertion {
    Assertion::fail(
        &e.name("exists"),
        "unexpected_file",
        format!(
            "{} exists, expected it to be absent; remove it: rm {}",
            e.label,
            e.path.display()
        ),
    )
}

fn facts(e: &Entry, m: Option<&Meta>) -> FileFacts {
    FileFacts {
        path: e.path.display().to_string(),
        mode: m.map(|m| m.mode),
        owner: m.map(|m| Id::user(m.uid).name_or_number()),
        group: m.map(|m| Id::group(m.gid).name_or_number()),
    }
}

fn attributes(e: &Entry, m: &Meta, out: &mut Outcome) {
    if let Some(want) = e.spec.mode {
        out.assertions.push(mode(e, Mode(m.mode), want));
    }
    if let Some(want) = &e.spec.owner {
        out.assertions.push(Id::user(m.uid).judge(e, want));
    }
    if let Some(want) = &e.spec.group {
        out.assertions.push(Id::group(m.gid).judge(e, want));
    }
}

fn mode(e: &Entry, found: Mode, want: Mode) -> Assertion {
    let name = e.name("mode");
    if found == want {
        return Assertion::pass(&name, format!("{} has mode {found}", e.label));
    }
    let path = e.path.display();
    Assertion::fail(
        &name,
        "mode",
        format!(
            "{} has mode {found}, expected {want}; run chmod {want} {path}",
            e.label
        ),
    )
}

/// A numeric owner or group and its name in the system database, if any.
struct Id {
    id: u32,
    name: Option<String>,
    role: Role,
}

/// Owner or group: the words and tools that go with each.
#[derive(Clone, Copy)]
enum Role {
    Owner,
    Group,
}

impl Role {
    fn assertion(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Group => "group",
        }
    }

    fn id_tag(self) -> &'static str {
        match self {
            Role::Owner => "uid",
            Role::Group => "gid",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Role::Owner => "is owned by",
            Role::Group => "has group",
        }
    }

    fn tool(self) -> &'static str {
        match self {
            Role::Owner => "chown",
            Role::Group => "chgrp",
        }
    }

    /// Whether a name exists in the user or group database.
    fn known(self, name: &str) -> bool {
        match self {
            Role::Owner => matches!(User::from_name(name), Ok(Some(_))),
            Role::Group => matches!(Group::from_name(name), Ok(Some(_))),
        }
    }
}

impl Id {
    fn user(uid: u32) -> Id {
        let name = User::from_uid(Uid::from_raw(uid)).ok().flatten();
        Id {
            id: uid,
            name: name.map(|u| u.name),
            role: Role::Owner,
        }
    }

    fn group(gid: u32) -> Id {
        let name = Group::from_gid(Gid::from_raw(gid)).ok().flatten();
        Id {
            id: gid,
            name: name.map(|g| g.name),
            role: Role::Group,
        }
    }

    fn name_or_number(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.id.to_string())
    }

    /// `root (uid 0)`, or `uid 54321 (no name on this host)`.
    fn describe(&self) -> String {
        let tag = self.role.id_tag();
        match &self.name {
            Some(n) => format!("{n} ({tag} {})", self.id),
            None => format!("{tag} {} (no name on this host)", self.id),
        }
    }

    /// The expected value is a name or a numeric id.
    fn matches(&self, want: &str) -> bool {
        self.name.as_deref() == Some(want) || want.parse::<u32>() == Ok(self.id)
    }

    fn judge(&self, e: &Entry, want: &str) -> Assertion {
        let (role, name) = (self.role, e.name(self.role.assertion()));
        let found = format!("{} {} {}", e.label, role.verb(), self.describe());
        if self.matches(want) {
            return Assertion::pass(&name, found);
        }
        let path = e.path.display();
        let hint = self.unknown_hint(want);
        let msg = format!(
            "{found}, expected {want}{hint}; run {} {want} {path}",
            role.tool()
        );
        Assertion::fail(&name, role.assertion(), msg)
    }

    fn unknown_hint(&self, want: &str) -> String {
        let numeric = want.parse::<u32>().is_ok();
        if numeric || self.role.known(want) {
            return String::new();
        }
        let what = match self.role {
            Role::Owner => "user",
            Role::Group => "group",
        };
        format!(" (no {what} named {want} exists on this host; create it or fix the suite)")
    }
}
