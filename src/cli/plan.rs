//! `localbuild plan` (issue 2).

use super::PlanArgs;

pub fn run(args: &PlanArgs) -> u8 {
    let _ = args;
    todo!("issue 2")
}
