//! Verdicts read from a one-check `gate --format json` report (`checks[0]`), for the tests
//! that parse the report themselves.
use serde_json::Value;

/// Assertion `name` of the first check.
pub fn assertion<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"][0]["assertions"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == name))
        .unwrap_or_else(|| panic!("no assertion {name} in {report:#}"))
}

/// `(status, reason)` of assertion `name` of the first check.
pub fn verdict(report: &Value, name: &str) -> (String, Option<String>) {
    let a = assertion(report, name);
    (
        a["status"].as_str().unwrap().to_string(),
        a["reason"].as_str().map(str::to_string),
    )
}

/// Assertion `name` of the first check passed.
pub fn passes(report: &Value, name: &str) {
    assert_eq!(verdict(report, name), ("pass".into(), None), "{report:#}");
}

/// Assertion `name` of the first check failed with `reason`.
pub fn fails(report: &Value, name: &str, reason: &str) {
    assert_eq!(
        verdict(report, name),
        ("fail".into(), Some(reason.to_string())),
        "{report:#}"
    );
}
