//! Collected measurements and their Markdown rendering.

use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
    /// Context for other rows (e.g. CPU use at whatever rate was reached),
    /// neither good nor bad by itself.
    Neither,
}

impl Better {
    fn word(self) -> &'static str {
        match self {
            Better::Higher => "higher",
            Better::Lower => "lower",
            Better::Neither => "info",
        }
    }
}

/// One measured value of one round on one target.
#[derive(Clone, Debug)]
pub struct Sample {
    pub metric: String,
    pub unit: &'static str,
    pub better: Better,
    pub value: f64,
}

impl Sample {
    pub fn higher(metric: impl Into<String>, unit: &'static str, value: f64) -> Sample {
        Sample {
            metric: metric.into(),
            unit,
            better: Better::Higher,
            value,
        }
    }

    pub fn lower(metric: impl Into<String>, unit: &'static str, value: f64) -> Sample {
        Sample {
            metric: metric.into(),
            unit,
            better: Better::Lower,
            value,
        }
    }

    pub fn info(metric: impl Into<String>, unit: &'static str, value: f64) -> Sample {
        Sample {
            metric: metric.into(),
            unit,
            better: Better::Neither,
            value,
        }
    }
}

#[derive(Debug)]
pub struct Metric {
    pub label: String,
    pub unit: &'static str,
    pub better: Better,
    /// Samples per column (target), one per round.
    pub values: Vec<Vec<f64>>,
}

impl Metric {
    pub fn median(&self, column: usize) -> Option<f64> {
        let mut v = self.values.get(column)?.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        Some(if v.len() % 2 == 0 {
            (v[mid - 1] + v[mid]) / 2.0
        } else {
            v[mid]
        })
    }

    pub fn best(&self, column: usize) -> Option<f64> {
        let v = self.values.get(column)?;
        match self.better {
            Better::Higher => v.iter().copied().reduce(f64::max),
            Better::Lower => v.iter().copied().reduce(f64::min),
            Better::Neither => None,
        }
    }
}

/// The results of one scenario: metrics in first-recorded order, a column
/// per target, plus notes and per-target failures.
#[derive(Debug)]
pub struct Section {
    pub id: &'static str,
    pub title: String,
    pub description: String,
    pub columns: Vec<String>,
    pub metrics: Vec<Metric>,
    pub errors: Vec<Option<String>>,
    pub notes: Vec<String>,
}

impl Section {
    pub fn new(
        id: &'static str,
        title: impl Into<String>,
        description: impl Into<String>,
        columns: Vec<String>,
    ) -> Section {
        let n = columns.len();
        Section {
            id,
            title: title.into(),
            description: description.into(),
            columns,
            metrics: Vec::new(),
            errors: vec![None; n],
            notes: Vec::new(),
        }
    }

    pub fn record(&mut self, column: usize, sample: Sample) {
        let n = self.columns.len();
        let index = match self.metrics.iter().position(|m| m.label == sample.metric) {
            Some(i) => i,
            None => {
                self.metrics.push(Metric {
                    label: sample.metric.clone(),
                    unit: sample.unit,
                    better: sample.better,
                    values: vec![Vec::new(); n],
                });
                self.metrics.len() - 1
            }
        };
        self.metrics[index].values[column].push(sample.value);
    }

    /// Keeps the first error of a column; later rounds are skipped for it.
    pub fn fail(&mut self, column: usize, error: &anyhow::Error) {
        if let Some(slot) = self.errors.get_mut(column)
            && slot.is_none()
        {
            *slot = Some(format!("{error:#}"));
        }
    }

    pub fn fail_all(&mut self, error: &anyhow::Error) {
        for column in 0..self.columns.len() {
            self.fail(column, error);
        }
    }

    pub fn failed(&self, column: usize) -> bool {
        self.errors.get(column).is_some_and(Option::is_some)
    }

    pub fn has_errors(&self) -> bool {
        self.errors.iter().any(Option::is_some)
    }

    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }
}

/// Formats with about three significant digits, which is more than the
/// run-to-run noise of any of these measurements.
pub fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn cell(metric: &Metric, column: usize, rounds: usize, failed: bool) -> String {
    if failed && metric.values[column].is_empty() {
        return "FAILED".to_owned();
    }
    match (metric.median(column), metric.best(column)) {
        (Some(median), Some(best)) if rounds > 1 && metric.values[column].len() > 1 => {
            format!("{} (best {})", fmt_value(median), fmt_value(best))
        }
        (Some(median), _) => fmt_value(median),
        _ => "n/a".to_owned(),
    }
}

fn ratio_cell(metric: &Metric) -> String {
    match (metric.median(0), metric.median(1)) {
        (Some(a), Some(b)) if b != 0.0 => {
            let ratio = a / b;
            let good = match metric.better {
                Better::Higher => ratio >= 1.0,
                Better::Lower => ratio <= 1.0,
                Better::Neither => return format!("{ratio:.2}"),
            };
            // Mark which side wins so the table reads at a glance; within 2%
            // is a tie, as no scenario here repeats more precisely than that.
            let mark = if (ratio - 1.0).abs() < 0.02 {
                "="
            } else if good {
                "✓"
            } else {
                "✗"
            };
            format!("{ratio:.2} {mark}")
        }
        _ => "n/a".to_owned(),
    }
}

/// Renders one table row per metric of every section, then per-section
/// details (description, raw samples, notes, failures).
pub fn render(header: &str, sections: &[Section], rounds: usize) -> String {
    let mut out = String::new();
    out.push_str(header);
    let mut by_columns: Vec<(&Vec<String>, Vec<&Section>)> = Vec::new();
    for section in sections {
        match by_columns.iter_mut().find(|(c, _)| **c == section.columns) {
            Some((_, list)) => list.push(section),
            None => by_columns.push((&section.columns, vec![section])),
        }
    }
    for (columns, group) in &by_columns {
        let compare = columns.len() == 2;
        let _ = write!(out, "\n| Scenario | Metric | Better |");
        for c in columns.iter() {
            let _ = write!(out, " {c} |");
        }
        if compare {
            let _ = write!(out, " {} / {} |", columns[0], columns[1]);
        }
        let _ = write!(out, "\n|---|---|---|");
        for _ in columns.iter() {
            out.push_str("---:|");
        }
        if compare {
            out.push_str("---:|");
        }
        out.push('\n');
        for section in group {
            if section.metrics.is_empty() {
                let _ = write!(out, "| {} | — | — |", section.id);
                for i in 0..columns.len() {
                    let text = if section.failed(i) { "FAILED" } else { "n/a" };
                    let _ = write!(out, " {text} |");
                }
                if compare {
                    out.push_str(" n/a |");
                }
                out.push('\n');
            }
            for metric in &section.metrics {
                let _ = write!(
                    out,
                    "| {} | {} ({}) | {} |",
                    section.id,
                    metric.label,
                    metric.unit,
                    metric.better.word()
                );
                for i in 0..columns.len() {
                    let _ = write!(out, " {} |", cell(metric, i, rounds, section.failed(i)));
                }
                if compare {
                    let _ = write!(out, " {} |", ratio_cell(metric));
                }
                out.push('\n');
            }
        }
    }
    if by_columns.iter().any(|(c, _)| c.len() == 2) {
        out.push_str(
            "\nCells show the median over rounds, with the best round in brackets. \
             The ratio compares medians: ✓ where the first target is better (in the \
             direction of the Better column), ✗ where it is worse, = within 2%; \
             `info` rows give context and have no better direction.\n",
        );
    }

    out.push_str("\n## Scenario details\n");
    for section in sections {
        let _ = write!(
            out,
            "\n### {} — {}\n\n{}\n",
            section.id, section.title, section.description
        );
        if !section.metrics.is_empty() {
            out.push_str("\nAll samples, in round order:\n\n");
            for metric in &section.metrics {
                for (i, column) in section.columns.iter().enumerate() {
                    let values: Vec<String> =
                        metric.values[i].iter().map(|v| fmt_value(*v)).collect();
                    if !values.is_empty() {
                        let _ = writeln!(
                            out,
                            "- {} ({}), {column}: {}",
                            metric.label,
                            metric.unit,
                            values.join(", ")
                        );
                    }
                }
            }
        }
        for note in &section.notes {
            let _ = write!(out, "\nNote: {note}\n");
        }
        for (i, error) in section.errors.iter().enumerate() {
            if let Some(error) = error {
                let _ = write!(
                    out,
                    "\n**FAILED on {}**: `{}`\n",
                    section.columns[i],
                    error.replace('`', "'")
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_best() {
        let mut s = Section::new("x", "X", "", vec!["a".into(), "b".into()]);
        for v in [3.0, 1.0, 2.0] {
            s.record(0, Sample::higher("tp", "MiB/s", v));
            s.record(1, Sample::lower("tp", "MiB/s", v * 2.0));
        }
        let m = &s.metrics[0];
        assert_eq!(m.median(0), Some(2.0));
        assert_eq!(m.best(0), Some(3.0));
        assert_eq!(ratio_cell(m), "0.50 ✗");
        assert_eq!(ratio_cell(&s.metrics[0]), "0.50 ✗");
        let mut tie = Section::new("y", "Y", "", vec!["a".into(), "b".into()]);
        tie.record(0, Sample::lower("t", "s", 1.01));
        tie.record(1, Sample::lower("t", "s", 1.0));
        assert_eq!(ratio_cell(&tie.metrics[0]), "1.01 =");
        tie.record(0, Sample::info("cpu", "cores", 1.0));
        tie.record(1, Sample::info("cpu", "cores", 2.0));
        assert_eq!(ratio_cell(&tie.metrics[1]), "0.50");
        assert_eq!(tie.metrics[1].best(0), None);
    }

    #[test]
    fn renders_failures() {
        let mut s = Section::new("push", "Push", "desc", vec!["a".into(), "b".into()]);
        s.record(1, Sample::higher("tp", "MiB/s", 5.0));
        s.fail(0, &anyhow::anyhow!("boom"));
        let text = render("# H\n", &[s], 1);
        assert!(text.contains("| push | tp (MiB/s) | higher | FAILED | 5.00 | n/a |"));
        assert!(text.contains("**FAILED on a**: `boom`"));
    }
}
