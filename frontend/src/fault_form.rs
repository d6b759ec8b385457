//! The fault form's logic: what can be broken in a run, and the fault text a choice makes.

use shared::protocol::{ServiceId, TraceHeader};
use shared::scenario::{ScenarioError, parse_fault};

/// The kinds of fault the form offers, with their names in fault text.
pub const FAULT_KINDS: &[(&str, &str)] = &[
    ("crash", "Crash a service"),
    ("slow", "Slow a service down"),
    ("partition", "Partition a link"),
    ("drop", "Drop messages on a link"),
    ("duplicate", "Duplicate messages on a link"),
    ("reorder", "Reorder messages on a link"),
];

/// True when `kind` breaks a service rather than a link.
pub fn targets_a_service(kind: &str) -> bool {
    matches!(kind, "crash" | "slow")
}

/// What a fault of `kind` can hit in a run with `header`: `(value, label)` pairs, the value
/// being what fault text names it by.
pub fn targets(header: &TraceHeader, kind: &str) -> Vec<(String, String)> {
    let name = |id: ServiceId| {
        header
            .services
            .get(id.0 as usize)
            .map_or_else(|| id.0.to_string(), |s| s.name.clone())
    };
    if targets_a_service(kind) {
        return header
            .services
            .iter()
            .map(|s| (s.name.clone(), s.name.clone()))
            .collect();
    }
    let mut links: Vec<(String, String)> = header
        .links
        .iter()
        .map(|(a, b)| {
            let (a, b) = (name(*a), name(*b));
            (format!("{a}-{b}"), format!("{a} – {b}"))
        })
        .collect();
    if kind != "partition" {
        links.push(("*".to_string(), "every link".to_string()));
    }
    links
}

/// A fault as the form describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultDraft {
    /// One of [`FAULT_KINDS`].
    pub kind: String,
    /// A value of [`targets`].
    pub target: String,
    /// When it begins, in seconds.
    pub at_s: f64,
    /// How long it lasts, in seconds; 0 means to the end of the run.
    pub for_s: f64,
    /// For `slow`: how many times slower. For the others on links: the percent of messages.
    pub amount: u32,
}

impl FaultDraft {
    /// The fault as text, such as `slow:Product*4@10+5`.
    pub fn text(&self) -> String {
        let what = match self.kind.as_str() {
            "crash" | "partition" => format!("{}:{}", self.kind, self.target),
            "slow" => format!("slow:{}*{}", self.target, self.amount),
            _ => format!("{}:{}={}%", self.kind, self.target, self.amount),
        };
        let seconds = |s: f64| crate::format::trim_number((s * 10.0).round() / 10.0);
        if self.for_s > 0.0 {
            format!("{what}@{}+{}", seconds(self.at_s), seconds(self.for_s))
        } else {
            format!("{what}@{}", seconds(self.at_s))
        }
    }

    /// The fault text, checked against the run's services.
    pub fn checked(&self, header: &TraceHeader) -> Result<String, ScenarioError> {
        let text = self.text();
        parse_fault(&text, &header.services).map(|_| text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::RunRequest;

    fn header() -> TraceHeader {
        let request = RunRequest {
            scenario: "eventual-consistency".into(),
            seed: 1,
            until_s: 1.0,
            knobs: Default::default(),
            faults: Vec::new(),
        };
        engine::start(&request).unwrap().header().clone()
    }

    fn draft(kind: &str, target: &str, at_s: f64, for_s: f64, amount: u32) -> FaultDraft {
        FaultDraft {
            kind: kind.into(),
            target: target.into(),
            at_s,
            for_s,
            amount,
        }
    }

    #[test]
    fn services_for_service_faults_and_links_for_link_faults() {
        let header = header();
        let values =
            |kind| -> Vec<String> { targets(&header, kind).into_iter().map(|t| t.0).collect() };
        assert_eq!(
            values("crash"),
            vec!["Client", "Order", "Product", "Broker"]
        );
        assert!(values("partition").contains(&"Product-Broker".to_string()));
        assert!(
            !values("partition").contains(&"*".to_string()),
            "a partition of everything is no lesson"
        );
        assert_eq!(values("drop").last().map(String::as_str), Some("*"));
    }

    #[test]
    fn drafts_become_fault_text_the_run_accepts() {
        let header = header();
        let check = |d: FaultDraft, expected: &str| {
            assert_eq!(d.checked(&header).as_deref(), Ok(expected));
        };
        check(
            draft("crash", "Product", 12.345, 5.0, 0),
            "crash:Product@12.3+5",
        );
        check(draft("slow", "Order", 3.0, 0.0, 4), "slow:Order*4@3");
        check(
            draft("partition", "Product-Broker", 1.0, 2.0, 0),
            "partition:Product-Broker@1+2",
        );
        check(draft("reorder", "*", 0.0, 0.0, 30), "reorder:*=30%@0");
        let bad = draft("slow", "Order", 3.0, 0.0, 1).checked(&header);
        assert!(bad.unwrap_err().to_string().contains("from 2 to 100"));
    }
}
