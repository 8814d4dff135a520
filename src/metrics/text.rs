//! The Prometheus text exposition format (version 0.0.4) and OpenMetrics 1.0 text, written
//! directly from the model. The two differ only in the family headers (OpenMetrics names a
//! counter family without `_total` and escapes `"` in help) and OpenMetrics' closing `# EOF`:
//! sample lines are the same bytes in both, so cached samples serve either.
//!
//! Why not the `prometheus` crate: every scrape rebuilds the per-check gauges from the latest
//! results (so a rotated serial or a removed check simply is not written again), the counters
//! live in the exporter's own state, and `gate --format prom` renders a `Report` with the same
//! code. A registry would have to be rebuilt per scrape for that, which costs more than
//! writing the lines. This encoder groups samples by family (the format requires it), writes
//! `# HELP` / `# TYPE` once per family, escapes label values and help text, and spells
//! non-finite values the way Prometheus parses them. Callers guarantee unique label sets.

use std::fmt::Write;

/// The exposition `Content-Type`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The OpenMetrics `Content-Type`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which text format an exposition is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The classic Prometheus text format 0.0.4.
    #[default]
    Text,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The answer's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }

    /// What closes an exposition: `# EOF` for OpenMetrics, nothing for text.
    pub fn trailer(self) -> &'static str {
        match self {
            Format::Text => "",
            Format::OpenMetrics => "# EOF\n",
        }
    }
}

/// Metric types this exporter uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// Declares a metric family: `family!(ID, "rotcheck_name", Gauge, "help text.");`.
macro_rules! family {
    ($id:ident, $name:literal, $kind:ident, $help:literal) => {
        #[doc = $help]
        pub static $id: $crate::metrics::text::Def = $crate::metrics::text::Def {
            name: $name,
            help: $help,
            kind: $crate::metrics::text::Kind::$kind,
        };
    };
}
pub(crate) use family;

/// A metric family's fixed description.
#[derive(Debug)]
pub struct Def {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

/// One family being written: its definition and its sample lines so far.
struct Family {
    def: &'static Def,
    body: String,
}

/// A set of families in a fixed order; empty families are left out of the output.
pub struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    /// An exposition whose families appear in `order` (others in first-use order after them).
    pub fn new(order: &[&'static Def]) -> Self {
        let families = order
            .iter()
            .map(|def| Family {
                def,
                body: String::new(),
            })
            .collect();
        Exposition { families }
    }

    /// Adds one sample. Labels are written in the order given.
    pub fn sample(&mut self, def: &'static Def, labels: &[(&str, &str)], value: f64) {
        let body = &mut self.family(def).body;
        body.push_str(def.name);
        write_labels(body, labels);
        body.push(' ');
        write_value(body, value);
        body.push('\n');
    }

    fn family(&mut self, def: &'static Def) -> &mut Family {
        let i = match self.families.iter().position(|f| f.def.name == def.name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    def,
                    body: String::new(),
                });
                self.families.len() - 1
            }
        };
        &mut self.families[i]
    }

    /// The text format: per family `# HELP`, `# TYPE`, then its samples.
    pub fn finish(self) -> String {
        self.finish_as(Format::Text)
    }

    /// The exposition in `format` (OpenMetrics ends with `# EOF`).
    pub fn finish_as(self, format: Format) -> String {
        let size = self.families.iter().map(|f| f.body.len() + 200).sum();
        let mut out = String::with_capacity(size);
        for f in &self.families {
            write_family(&mut out, format, f.def, std::iter::once(f.body.as_str()));
        }
        out.push_str(format.trailer());
        out
    }

    /// The sample lines of each family, in family order (for callers that cache them).
    pub fn into_bodies(self) -> Vec<String> {
        self.families.into_iter().map(|f| f.body).collect()
    }
}

/// Writes one family: its header, then every non-empty piece of sample lines. Nothing at
/// all when every piece is empty.
pub fn write_family<'a, I>(out: &mut String, format: Format, def: &Def, pieces: I)
where
    I: Iterator<Item = &'a str> + Clone,
{
    if pieces.clone().all(str::is_empty) {
        return;
    }
    write_header(out, format, def);
    for p in pieces {
        out.push_str(p);
    }
}

/// A family's `# HELP` and `# TYPE` lines.
pub fn write_header(out: &mut String, format: Format, def: &Def) {
    let name = match (format, def.kind) {
        (Format::OpenMetrics, Kind::Counter) => def.name.strip_suffix("_total").unwrap_or(def.name),
        _ => def.name,
    };
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    escape_into(out, def.help, format == Format::OpenMetrics);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(def.kind.as_str());
    out.push('\n');
}

/// A sample line up to its value: `name{labels} ` (for callers that write the value later).
pub fn line_prefix(def: &Def, labels: &[(&str, &str)]) -> String {
    let mut out = String::from(def.name);
    write_labels(&mut out, labels);
    out.push(' ');
    out
}

fn write_labels(out: &mut String, labels: &[(&str, &str)]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        escape_into(out, value, true);
        out.push('"');
    }
    out.push('}');
}

/// Escapes `\` and newlines (and `"` inside label values).
fn escape_into(out: &mut String, text: &str, quote: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Integers without a fraction, others in the shortest round-trip form, `NaN`/`+Inf`/`-Inf`.
pub fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v == v.trunc() && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static G: Def = Def {
        name: "x_gauge",
        help: "A gauge.\nSecond line with \\ backslash.",
        kind: Kind::Gauge,
    };
    static C: Def = Def {
        name: "x_events_total",
        help: "Events.",
        kind: Kind::Counter,
    };
    static UNUSED: Def = Def {
        name: "x_unused",
        help: "Never sampled.",
        kind: Kind::Gauge,
    };

    #[test]
    fn groups_samples_by_family_in_the_given_order() {
        let mut e = Exposition::new(&[&C, &G, &UNUSED]);
        e.sample(&G, &[("a", "1")], 1.0);
        e.sample(&C, &[], 3.0);
        e.sample(&G, &[("a", "2")], 0.5);
        let text = e.finish();
        let expected = "# HELP x_events_total Events.\n# TYPE x_events_total counter\n\
            x_events_total 3\n\
            # HELP x_gauge A gauge.\\nSecond line with \\\\ backslash.\n# TYPE x_gauge gauge\n\
            x_gauge{a=\"1\"} 1\nx_gauge{a=\"2\"} 0.5\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn escapes_label_values() {
        let mut e = Exposition::new(&[]);
        e.sample(&G, &[("p", "a\"b\\c\nd"), ("q", "é")], 1.0);
        assert!(e
            .finish()
            .contains("x_gauge{p=\"a\\\"b\\\\c\\nd\",q=\"é\"} 1\n"));
    }

    #[test]
    fn spells_values_the_way_prometheus_parses_them() {
        let cases = [
            (0.0, "0"),
            (-3.0, "-3"),
            (1_700_000_000.0, "1700000000"),
            (0.25, "0.25"),
            (1e20, "100000000000000000000"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (v, s) in cases {
            let mut out = String::new();
            write_value(&mut out, v);
            assert_eq!(out, s, "{v}");
            if v.is_finite() {
                assert_eq!(out.parse::<f64>().unwrap(), v);
            }
        }
    }

    #[test]
    fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
        let mut e = Exposition::new(&[&C, &G]);
        e.sample(&C, &[], 3.0);
        e.sample(&G, &[("a", "\"")], 1.0);
        let text = e.finish_as(Format::OpenMetrics);
        let expected = "# HELP x_events Events.\n# TYPE x_events counter\nx_events_total 3\n\
            # HELP x_gauge A gauge.\\nSecond line with \\\\ backslash.\n# TYPE x_gauge gauge\n\
            x_gauge{a=\"\\\"\"} 1\n# EOF\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn empty_exposition_is_empty() {
        assert_eq!(Exposition::new(&[&G]).finish(), "");
    }
}
