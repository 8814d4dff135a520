//! The lab directory: where every credential file goes (the seeds' per-user layout), writing
//! files with their final mode from the first byte, and rendering `lab.env` and `lab.yaml`.

use crate::LabError;
use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of private keys and tokens.
pub const KEY_MODE: u32 = 0o600;
/// Mode of certificates and other public files.
pub const CERT_MODE: u32 = 0o644;

/// The suite template (`checks/lab.yaml`) rendered into every lab directory.
pub const SUITE_TEMPLATE: &str = include_str!("../../checks/lab.yaml");

/// A client identity on disk: certificate, key, and the CA file it uses to verify Vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Short name (`admin`, `app-a`, `app-b`).
    pub name: String,
    /// PEM certificate (0644).
    pub cert: PathBuf,
    /// PEM private key (0600).
    pub key: PathBuf,
    /// CA file for verifying the Vault server (0644).
    pub ca: PathBuf,
}

/// An application's leaf certificate written as a post-hook would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLeaf {
    /// Leaf + intermediate (0644).
    pub fullchain: PathBuf,
    /// Private key (0600).
    pub key: PathBuf,
}

/// Every file a lab wrote, by role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabFiles {
    /// The lab directory.
    pub dir: PathBuf,
    /// `ca/root.pem`: the self-signed root.
    pub root_ca: PathBuf,
    /// `ca/intermediate.pem`: the issuing intermediate.
    pub intermediate_ca: PathBuf,
    /// `vault/ca_chain.pem`: intermediate + root, what clients trust (`VAULT_CACERT`).
    pub ca_chain: PathBuf,
    /// `vault/tls/server.crt`: the listener's leaf.
    pub server_cert: PathBuf,
    /// `vault/tls/server.key` (0600).
    pub server_key: PathBuf,
    /// `vault/tls/fullchain.crt`: leaf + intermediate; what the listener serves and reloads.
    pub server_fullchain: PathBuf,
    /// `vault/tls/ca_chain.pem`: intermediate + root next to the server files.
    pub server_ca_chain: PathBuf,
    /// `vault/tls-admin/admin.{crt,key}` and `issuing_ca.pem`.
    pub admin: Identity,
    /// `<app>/vault/mtls/agent.{crt,key}` and `<app>/vault/ca/ca.pem` for app-a and app-b.
    pub agents: Vec<Identity>,
    /// `<app>/tls/<app>.fullchain.pem` and `.key` for app-a and app-b.
    pub app_leaves: Vec<AppLeaf>,
    /// `proxy/trust/ca_chain.pem`: the edge proxy's upstream trust bundle.
    pub proxy_ca_chain: PathBuf,
    /// `vault/root-token` (0600): the lab's root token, for scripts (never printed).
    pub root_token: PathBuf,
    /// `lab.env`: `export VAULT_*=…` for the admin identity.
    pub env: PathBuf,
    /// `lab.yaml`: the rendered suite.
    pub suite: PathBuf,
}

impl LabFiles {
    /// The layout under `dir` (nothing is written).
    pub fn under(dir: &Path) -> LabFiles {
        let p = |rel: &str| dir.join(rel);
        LabFiles {
            dir: dir.to_path_buf(),
            root_ca: p("ca/root.pem"),
            intermediate_ca: p("ca/intermediate.pem"),
            ca_chain: p("vault/ca_chain.pem"),
            server_cert: p("vault/tls/server.crt"),
            server_key: p("vault/tls/server.key"),
            server_fullchain: p("vault/tls/fullchain.crt"),
            server_ca_chain: p("vault/tls/ca_chain.pem"),
            admin: Identity {
                name: "admin".into(),
                cert: p("vault/tls-admin/admin.crt"),
                key: p("vault/tls-admin/admin.key"),
                ca: p("vault/tls-admin/issuing_ca.pem"),
            },
            agents: ["app-a", "app-b"].iter().map(|a| agent(dir, a)).collect(),
            app_leaves: ["app-a", "app-b"]
                .iter()
                .map(|a| app_leaf(dir, a))
                .collect(),
            proxy_ca_chain: p("proxy/trust/ca_chain.pem"),
            root_token: p("vault/root-token"),
            env: p("lab.env"),
            suite: p("lab.yaml"),
        }
    }

    /// The agent identity named `name` (`app-a`, `app-b`).
    pub fn agent(&self, name: &str) -> Option<&Identity> {
        self.agents.iter().find(|a| a.name == name)
    }

    /// Every credential file, for listing and cleanup.
    pub fn all(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = vec![
            &self.root_ca,
            &self.intermediate_ca,
            &self.ca_chain,
            &self.server_cert,
            &self.server_key,
            &self.server_fullchain,
            &self.server_ca_chain,
            &self.proxy_ca_chain,
            &self.root_token,
        ];
        for id in std::iter::once(&self.admin).chain(&self.agents) {
            v.extend([id.cert.as_path(), id.key.as_path(), id.ca.as_path()]);
        }
        for leaf in &self.app_leaves {
            v.extend([leaf.fullchain.as_path(), leaf.key.as_path()]);
        }
        v
    }
}

fn agent(dir: &Path, app: &str) -> Identity {
    Identity {
        name: app.into(),
        cert: dir.join(format!("{app}/vault/mtls/agent.crt")),
        key: dir.join(format!("{app}/vault/mtls/agent.key")),
        ca: dir.join(format!("{app}/vault/ca/ca.pem")),
    }
}

fn app_leaf(dir: &Path, app: &str) -> AppLeaf {
    AppLeaf {
        fullchain: dir.join(format!("{app}/tls/{app}.fullchain.pem")),
        key: dir.join(format!("{app}/tls/{app}.key")),
    }
}

/// Writes `contents` to `path` atomically: a temp file created with `mode` (so a key is never
/// readable by others, even briefly), fsync, rename. Parent directories are created, 0700 when
/// they will hold a private key, else 0755.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), LabError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let dir_mode = if mode & 0o077 == 0 { 0o700 } else { 0o755 };
    DirBuilder::new()
        .recursive(true)
        .mode(dir_mode)
        .create(parent)
        .map_err(LabError::io(parent))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(LabError::io(&tmp))?;
    f.set_permissions(Permissions::from_mode(mode))
        .map_err(LabError::io(&tmp))?;
    f.write_all(contents).map_err(LabError::io(&tmp))?;
    f.sync_all().map_err(LabError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(LabError::io(path))
}

/// `export KEY='value'` lines, single quotes escaped for sh.
pub fn render_env(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("export {k}='{}'\n", v.replace('\'', r"'\''")))
        .collect()
}

/// The suite template with the values of its top-level `vars:` block replaced (other lines,
/// comments included, are kept).
pub fn render_suite(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut in_vars = false;
    for line in template.lines() {
        let top_level = !line.starts_with([' ', '\t', '#']) && !line.trim().is_empty();
        if top_level {
            in_vars = line.trim_end() == "vars:";
        }
        out.push_str(&render_var_line(line, in_vars && !top_level, vars));
        out.push('\n');
    }
    out
}

fn render_var_line(line: &str, in_vars: bool, vars: &[(&str, String)]) -> String {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    let key = trimmed.split_once(':').map(|(k, _)| k.trim());
    match (in_vars, key) {
        (true, Some(k)) => match vars.iter().find(|(name, _)| *name == k) {
            Some((_, v)) => format!(
                "{indent}{k}: \"{}\"",
                v.replace('\\', "\\\\").replace('"', "\\\"")
            ),
            None => line.to_string(),
        },
        _ => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_vars_are_replaced_only_in_the_vars_block() {
        let t = "suite: lab\nvars:\n  lab_addr: 127.0.0.1:8200 # c\n  other: x\n# note\nvault:\n  lab_addr: keep\n";
        let r = render_suite(t, &[("lab_addr", "127.0.0.1:4321".into())]);
        assert!(r.contains("  lab_addr: \"127.0.0.1:4321\"\n  other: x\n"));
        assert!(r.contains("vault:\n  lab_addr: keep\n"));
    }

    #[test]
    fn env_lines_quote() {
        assert_eq!(render_env(&[("A", "it's".into())]), "export A='it'\\''s'\n");
    }

    #[test]
    fn template_has_a_vars_block() {
        assert!(SUITE_TEMPLATE.contains("\nvars:\n") && SUITE_TEMPLATE.contains("suite: lab"));
    }
}
