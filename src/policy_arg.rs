//! A `--policy` value checked before anything runs: a policy that exists, and, for
//! `static:A,B,…`, one worker count per stage of every pipeline it will drive.

use anyhow::{bail, Result};
use brigade_controller::from_name;
use brigade_scenario::Scenario;

/// Checks that `policy` names a policy and that its per-stage worker counts, if it
/// has them, match `scenario`'s stages.
pub fn check(policy: &str, scenario: &Scenario) -> Result<()> {
    let names: Vec<&str> = scenario.stages.iter().map(|s| s.name.as_str()).collect();
    check_stages(policy, &format!("scenario `{}`", scenario.name), &names)
}

/// Checks that `policy` names a policy and that its per-stage worker counts, if it
/// has them, are one per stage of `pipeline` (`stages`, in pipeline order).
pub fn check_stages(policy: &str, pipeline: &str, stages: &[&str]) -> Result<()> {
    from_name(policy)?;
    let Some(counts) = policy
        .strip_prefix("static:")
        .filter(|counts| counts.contains(','))
    else {
        return Ok(());
    };
    let given = counts.split(',').count();
    if given != stages.len() {
        bail!(
            "--policy {policy} gives {given} worker counts, and {pipeline} has {} stages \
             ({}): give one count per stage, in pipeline order",
            stages.len(),
            stages.join(", ")
        );
    }
    Ok(())
}
