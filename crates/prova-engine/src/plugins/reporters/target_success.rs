//! `TargetSuccess`: a run succeeds when enough of its targets passed.
//!
//! As a run reporter it takes `SuccessExpression`, e.g. `">80%"`, `"=100%"`
//! or `">=2"`: an operator (`>`, `>=`, `<`, `<=`, `=`) and a number of
//! targets or a percentage, over all targets of the run's tests.
//! As a final reporter it takes `AverageSuccessExpression`, judged on the
//! average over all runs (the average percentage, or the average number of
//! targets that passed). ConTest never implemented the final form.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use prova_core::descriptor::check_keys;
use prova_core::diag::{Diagnostics, FieldPath};
use prova_core::node::Node;
use prova_core::status::Report;
use regex::Regex;
use serde_json::json;

use crate::plugin::{
    FinalReportInput, PrepareCtx, PreparedReporter, Reporter, ReporterRole, RunReportInput,
};

pub struct TargetSuccess;

/// A parsed success expression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuccessExpr {
    pub op: Op,
    pub value: f64,
    pub percent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
}

static EXPR_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(>=|<=|>|<|=)\s*(\d+(?:\.\d+)?)\s*(%?)\s*$").unwrap());

impl SuccessExpr {
    pub fn parse(s: &str) -> Result<SuccessExpr, String> {
        let caps = EXPR_RE
            .captures(s)
            .ok_or_else(|| format!("invalid success expression {s:?}: expected an operator (>, >=, <, <=, =) and a number or percentage, e.g. \">80%\" or \">=2\""))?;
        let op = match &caps[1] {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            _ => Op::Eq,
        };
        let value: f64 = caps[2]
            .parse()
            .map_err(|_| format!("invalid number in {s:?}"))?;
        let percent = &caps[3] == "%";
        if percent && value > 100.0 {
            return Err(format!(
                "invalid success expression {s:?}: a percentage cannot exceed 100"
            ));
        }
        Ok(SuccessExpr { op, value, percent })
    }

    /// Judges `passed` out of `total` (both may be averages).
    pub fn holds(&self, passed: f64, total: f64) -> bool {
        let actual = if self.percent {
            if total == 0.0 {
                0.0
            } else {
                passed * 100.0 / total
            }
        } else {
            passed
        };
        let eps = 1e-9;
        match self.op {
            Op::Gt => actual > self.value + eps,
            Op::Ge => actual + eps >= self.value,
            Op::Lt => actual + eps < self.value,
            Op::Le => actual <= self.value + eps,
            Op::Eq => (actual - self.value).abs() <= eps,
        }
    }
}

struct Prepared {
    expr: SuccessExpr,
    text: String,
}

impl Reporter for TargetSuccess {
    fn prepare(
        &self,
        role: ReporterRole,
        params: &Node,
        path: &FieldPath,
        _ctx: &PrepareCtx<'_>,
        diags: &mut Diagnostics,
    ) -> Option<Arc<dyn PreparedReporter>> {
        let key = match role {
            ReporterRole::Run => "SuccessExpression",
            ReporterRole::Final => "AverageSuccessExpression",
        };
        if let Some(map) = params.as_map() {
            check_keys(
                map,
                path,
                &["SuccessExpression", "AverageSuccessExpression"],
                diags,
            );
        }
        let Some(n) = params.get_ci(key) else {
            diags.error(
                &path.key(key),
                params.pos,
                format!(
                    "missing: TargetSuccess as a {} reporter needs {key}, e.g. \">80%\"",
                    if role == ReporterRole::Run {
                        "run"
                    } else {
                        "final"
                    }
                ),
            );
            return None;
        };
        let text = n.scalar_text();
        match SuccessExpr::parse(&text) {
            Ok(expr) => Some(Arc::new(Prepared { expr, text })),
            Err(e) => {
                diags.error(&path.key(key), n.pos, e);
                None
            }
        }
    }
}

#[async_trait]
impl PreparedReporter for Prepared {
    async fn run_report(&self, input: &RunReportInput<'_>) -> Option<Report> {
        let (ok, total) = input.run.target_counts();
        let success = self.expr.holds(ok as f64, total as f64);
        let pct = if total == 0 {
            0.0
        } else {
            ok as f64 * 100.0 / total as f64
        };
        Some(Report {
            success,
            data: json!({
                "Message": format!("{ok}/{total} targets succeeded ({pct:.2}%), expected {}", self.text),
                "SucceededTargets": ok,
                "TotalTargets": total,
            }),
            ..Default::default()
        })
    }

    async fn final_report(&self, input: &FinalReportInput<'_>) -> Option<Report> {
        let runs = input.runs.len().max(1) as f64;
        let (mut ok_sum, mut total_sum, mut pct_sum) = (0.0, 0.0, 0.0);
        for run in input.runs {
            let (ok, total) = run.target_counts();
            ok_sum += ok as f64;
            total_sum += total as f64;
            pct_sum += if total == 0 {
                0.0
            } else {
                ok as f64 * 100.0 / total as f64
            };
        }
        let success = if self.expr.percent {
            self.expr.holds(pct_sum / runs, 100.0)
        } else {
            self.expr.holds(ok_sum / runs, total_sum / runs)
        };
        Some(Report {
            success,
            data: json!({
                "Message": format!(
                    "on average {:.2} of {:.2} targets succeeded per run ({:.2}%) over {} runs, expected {}",
                    ok_sum / runs, total_sum / runs, pct_sum / runs, input.runs.len(), self.text
                ),
                "Runs": input.runs.len(),
                "AverageSucceededTargets": ok_sum / runs,
                "AverageSuccessPercent": pct_sum / runs,
            }),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_judges_expressions() {
        let cases = [
            (">80%", 9.0, 10.0, true),
            (">80%", 8.0, 10.0, false),
            (">=80%", 8.0, 10.0, true),
            ("=100%", 3.0, 3.0, true),
            ("=100%", 2.0, 3.0, false),
            ("<50%", 1.0, 3.0, true),
            ("<=1", 1.0, 5.0, true),
            (">=2", 1.0, 5.0, false),
            ("= 2", 2.0, 5.0, true),
            (">0%", 0.0, 0.0, false),
        ];
        for (expr, ok, total, want) in cases {
            let e = SuccessExpr::parse(expr).unwrap();
            assert_eq!(e.holds(ok, total), want, "{expr} with {ok}/{total}");
        }
    }

    #[test]
    fn rejects_bad_expressions() {
        for bad in ["80%", ">", "=>80", ">80%%", ">101%", "abc", ""] {
            assert!(SuccessExpr::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
