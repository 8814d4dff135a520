//! What every rotate action gets: Vault access through the suite's profile (a fresh client per
//! use, so rotated CA and client files are re-read), the dry-run switch, and the progress
//! output. Also the error type of the actions.

use super::atomic::AtomicError;
use super::reload::ReloadError;
use super::state::CertChange;
use super::verify::VerifyError;
use crate::vault::{Session, Settings, VaultClient, VaultError};
use serde_json::Value;
use std::io::Write;
use std::time::{Duration, SystemTime};

/// Why an action failed. Messages hold no key material and no token.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("{}", vault_message(what, source))]
    Vault {
        what: String,
        #[source]
        source: VaultError,
    },
    #[error("{0}")]
    File(#[from] AtomicError),
    #[error("{what}: {source}")]
    Refused {
        what: String,
        #[source]
        source: VerifyError,
    },
    #[error("{0}")]
    Reload(#[from] ReloadError),
    #[error("{0}")]
    Material(String),
    #[error("{0}")]
    Config(String),
}

/// Vault's HTTP errors already name the call; other failures get the context.
fn vault_message(what: &str, source: &VaultError) -> String {
    match source {
        VaultError::Http { .. } => source.to_string(),
        _ => format!("{what}: {source}"),
    }
}

/// What one action did.
#[derive(Debug, Clone, Default)]
pub struct Done {
    /// Anything changed (files, Vault objects).
    pub changed: bool,
    /// Certificate files replaced, with old and new identities.
    pub certs: Vec<CertChange>,
}

/// Progress lines: printed as they happen (unless quiet) and kept for the caller.
#[derive(Debug, Default)]
pub struct Out {
    pub lines: Vec<String>,
    pub quiet: bool,
    pub indent: usize,
}

impl Out {
    /// Prints an error line to stderr and keeps it (redacted).
    pub fn error(&mut self, s: impl Into<String>) {
        let s = crate::redact::redact(&s.into());
        if !self.quiet {
            let _ = writeln!(std::io::stderr(), "{s}");
        }
        self.lines.push(s);
    }

    /// Prints and keeps one line (redacted).
    pub fn line(&mut self, s: impl Into<String>) {
        let s = format!("{}{}", " ".repeat(self.indent), s.into());
        let s = crate::redact::redact(&s);
        if !self.quiet {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{s}");
            let _ = o.flush();
        }
        self.lines.push(s);
    }
}

/// Vault access for one action or step.
pub struct VaultIo {
    settings: Settings,
    client: VaultClient,
    session: Session,
}

/// Time allowed for all Vault calls of one action.
pub const VAULT_BUDGET: Duration = Duration::from_secs(60);

impl VaultIo {
    /// A client from the profile, reading its CA and identity files now.
    pub fn new(settings: &Settings) -> Result<Self, RotateError> {
        let client = VaultClient::new(&settings.endpoint, VAULT_BUDGET).map_err(|source| {
            RotateError::Vault {
                what: "connecting to Vault with the suite's vault profile".into(),
                source,
            }
        })?;
        Ok(VaultIo {
            settings: settings.clone(),
            client,
            session: Session::default(),
        })
    }

    async fn token(&self, what: &str) -> Result<crate::vault::Token, RotateError> {
        self.session
            .token(&self.client, &self.settings.token, what)
            .await
            .map_err(|source| RotateError::Vault {
                what: what.into(),
                source,
            })
    }

    /// `GET` with the token: `data` of the answer, `None` on 404.
    pub async fn read(&self, path: &str) -> Result<Option<Value>, RotateError> {
        let what = format!("GET {path}");
        let token = self.token(&what).await?;
        self.get(path, Some(&token)).await
    }

    /// `GET` without a token (public PKI paths).
    pub async fn read_public(&self, path: &str) -> Result<Option<Value>, RotateError> {
        self.get(path, None).await
    }

    async fn get(
        &self,
        path: &str,
        token: Option<&crate::vault::Token>,
    ) -> Result<Option<Value>, RotateError> {
        let err = |source| RotateError::Vault {
            what: format!("GET {path}"),
            source,
        };
        let reply = self.client.get(path, token).await.map_err(err)?;
        if reply.status == 404 {
            return Ok(None);
        }
        let v = reply.into_ok().map_err(err)?;
        Ok(Some(v.get("data").cloned().unwrap_or(v)))
    }

    /// `POST` with the token; the whole answer (`Null` for 204).
    pub async fn write(&self, path: &str, body: &Value) -> Result<Value, RotateError> {
        self.send(Verb::Post, path, body).await
    }

    /// `POST` or `PATCH` (JSON merge patch) with the token; the whole answer.
    pub async fn send(&self, verb: Verb, path: &str, body: &Value) -> Result<Value, RotateError> {
        let what = format!("{} {path}", verb.as_str());
        let token = self.token(&what).await?;
        let err = |source| RotateError::Vault {
            what: what.clone(),
            source,
        };
        let reply = match verb {
            Verb::Post => self.client.post(path, body, Some(&token)).await,
            Verb::Patch => self.client.patch(path, body, Some(&token)).await,
        };
        reply.map_err(err)?.into_ok().map_err(err)
    }

    /// Revokes a token obtained by a cert login; failures are returned as messages.
    pub async fn close(&self) -> Vec<String> {
        self.session
            .close()
            .await
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }
}

/// The context of one action.
pub struct Ctx<'a> {
    pub vault: &'a VaultIo,
    pub dry_run: bool,
    pub now: SystemTime,
    pub out: &'a mut Out,
}

impl Ctx<'_> {
    /// A line, marked `[dry-run]` in a dry run.
    pub fn say(&mut self, s: impl Into<String>) {
        let s = s.into();
        if self.dry_run {
            self.out.line(format!("[dry-run] {s}"));
        } else {
            self.out.line(s);
        }
    }
}

/// How a change is sent: a whole object, or a merge patch of the changed fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Post,
    Patch,
}

impl Verb {
    /// The HTTP method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Post => "POST",
            Verb::Patch => "PATCH",
        }
    }
}

/// Sends `body` to `path` with `verb` (or says it would, with `--dry-run`), naming the changes
/// and relaying Vault's warnings.
pub async fn write_changes(
    cx: &mut Ctx<'_>,
    verb: Verb,
    path: &str,
    body: &Value,
    changes: &[String],
) -> Result<Done, RotateError> {
    let would = if cx.dry_run { "would " } else { "" };
    cx.say(format!(
        "{would}{} {path}: {}",
        verb.as_str(),
        changes.join("; ")
    ));
    if !cx.dry_run {
        let answer = cx.vault.send(verb, path, body).await?;
        for w in warnings(&answer) {
            cx.say(format!("Vault warns: {w}"));
        }
    }
    Ok(Done {
        changed: true,
        certs: vec![],
    })
}

/// Vault's `warnings` of an answer, for printing: one line each, redacted before any cut.
pub fn warnings(v: &Value) -> Vec<String> {
    crate::vault::auth::strings(v.get("warnings"))
        .iter()
        .map(|w| crate::vault::errors::clean_message(w))
        .collect()
}
