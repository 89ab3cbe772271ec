//! `localbuild plan`: find the buildspec as CodeBuild does, validate it, print the dry-run plan.

use super::PlanArgs;

pub fn run(args: &PlanArgs) -> u8 {
    let _ = args;
    1
}
