//! Prometheus tooling for the tests: a text-format parser (to assert on samples, not
//! strings), `promtool`/`amtool` runners, and a real `prometheus` process in a temp dir.

use super::client::{self, Conn};
use super::{deadline_loop, free_port, repo_path};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One sample of the text format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed exposition.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub samples: Vec<Sample>,
    /// `# TYPE` per family.
    pub types: BTreeMap<String, String>,
    /// `# HELP` per family.
    pub help: BTreeMap<String, String>,
}

impl Metrics {
    /// Parses the text format (panics on a malformed line: the exporter must not emit one).
    pub fn parse(text: &str) -> Metrics {
        let mut m = Metrics::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                m.types.insert(name.into(), kind.into());
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                m.help.insert(name.into(), help.into());
            } else if !line.starts_with('#') {
                m.samples.push(parse_sample(line));
            }
        }
        m
    }

    /// Samples of `name` whose labels include every pair of `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The value of the one sample matching, if exactly one does.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        match self.find(name, labels).as_slice() {
            [one] => Some(one.value),
            _ => None,
        }
    }

    /// Distinct values of label `label` on samples of `name`.
    pub fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .find(name, &[])
            .into_iter()
            .filter_map(|s| s.labels.get(label).cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

fn parse_sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').unwrap();
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}")),
    };
    let (name, labels) = match series.split_once('{') {
        None => (series.to_string(), BTreeMap::new()),
        Some((n, rest)) => (n.to_string(), parse_labels(rest.strip_suffix('}').unwrap())),
    };
    Sample {
        name,
        labels,
        value,
    }
}

fn parse_labels(mut s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    while !s.is_empty() {
        let (k, rest) = s.split_once("=\"").unwrap();
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next().unwrap();
            match c {
                '\\' => match chars.next().unwrap().1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        out.insert(k.to_string(), value);
        s = rest[end + 1..].trim_start_matches(',');
    }
    out
}

/// Whether a tool is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Prints the skip line and returns true when a tool is missing (panics instead when
/// `ROTCHECK_REQUIRE_TOOLS` is set).
pub fn skip_without(tools: &[&str]) -> bool {
    let missing: Vec<_> = tools.iter().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return false;
    }
    if std::env::var_os("ROTCHECK_REQUIRE_TOOLS").is_some() {
        panic!("{missing:?} not installed and ROTCHECK_REQUIRE_TOOLS is set");
    }
    eprintln!(
        "SKIP: {missing:?} not installed (apt-get install -y prometheus prometheus-alertmanager)"
    );
    true
}

/// `promtool check metrics` on `text`: Ok, or the lint output.
pub fn promtool_check_metrics(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(said)
    }
}

/// Runs a tool, returning (success, stdout+stderr).
pub fn run_tool(tool: &str, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A real Prometheus server scraping the given targets, with the given rule files.
pub struct Prometheus {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts it (scrape and evaluation every second) and waits until it is ready.
    pub fn start(targets: &[SocketAddr], rules: &[PathBuf]) -> Prometheus {
        Prometheus::start_with(&config_text(targets, rules))
    }

    /// Starts it with this configuration file text and waits until it is ready.
    pub fn start_with(config_text: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_text).unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let p = Prometheus {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: dir,
        };
        deadline_loop("prometheus ready", Duration::from_secs(30), || {
            client::request(p.addr, &Conn::default(), "GET", "/-/ready", &[])
                .map(|r| r.status == 200)
                .unwrap_or(false)
        });
        p
    }

    /// GET an API path; returns `data` on success, the error text otherwise.
    pub fn api(&self, path_and_query: &str) -> Result<Value, String> {
        let r = client::request(self.addr, &Conn::default(), "GET", path_and_query, &[])
            .map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&r.body).map_err(|e| format!("{e}: {}", r.body))?;
        if v["status"] == "success" {
            Ok(v["data"].clone())
        } else {
            Err(format!("{}: {}", v["errorType"], v["error"]))
        }
    }

    /// An instant query; returns the result vector.
    pub fn query(&self, q: &str) -> Result<Vec<Value>, String> {
        let data = self.api(&format!("/api/v1/query?query={}", client::encode(q)))?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_text(targets: &[SocketAddr], rules: &[PathBuf]) -> String {
    let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let rules: Vec<String> = rules.iter().map(|r| format!("'{}'", r.display())).collect();
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files: [{}]\n\
         scrape_configs:\n  - job_name: rotcheck\n    static_configs:\n      - targets: [{}]\n",
        rules.join(", "),
        targets.join(", ")
    )
}

/// A copy of the shipped rules with every `for` shortened, written into `dir`.
pub fn fast_rules(dir: &Path, for_: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo_path("alerts/rotcheck.rules.yml")).unwrap();
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    for group in doc["groups"].as_sequence_mut().unwrap() {
        for rule in group["rules"].as_sequence_mut().unwrap() {
            if let Some(map) = rule.as_mapping_mut() {
                map.insert("for".into(), for_.into());
            }
        }
    }
    let path = dir.join("rotcheck.fast.rules.yml");
    std::fs::write(&path, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_escaped_labels() {
        let m = Metrics::parse("# TYPE a gauge\na{x=\"q\\\"u\\\\o\\nte\",y=\"2\"} 1.5\nb 2\n");
        assert_eq!(m.samples[0].labels["x"], "q\"u\\o\nte");
        assert_eq!(m.value("a", &[("y", "2")]), Some(1.5));
        assert_eq!(m.value("b", &[]), Some(2.0));
        assert_eq!(m.types["a"], "gauge");
    }
}
