//! Health of batch workloads: Job and CronJob.

use super::fields::{boolean, conditions, find, healthy, progressing};
use super::{Assessment, Check, Health};
use serde_json::Value;

pub(super) fn job(object: &Value) -> Check {
    let conditions = conditions(object)?;
    if let Some(c) = find(&conditions, "Failed")
        && c.status == "True"
    {
        let message = if c.message.is_empty() {
            c.reason
        } else {
            c.message
        };
        return Ok(Assessment::new(Health::Degraded, message));
    }
    if let Some(c) = find(&conditions, "Complete")
        && c.status == "True"
    {
        return Ok(Assessment::new(Health::Healthy, c.message));
    }
    let suspended_condition = find(&conditions, "Suspended").is_some_and(|c| c.status == "True");
    if suspended_condition || boolean(object, "/spec/suspend")? == Some(true) {
        return Ok(Assessment::new(Health::Suspended, "job is suspended"));
    }
    progressing("job is running")
}

pub(super) fn cron_job(object: &Value) -> Check {
    if boolean(object, "/spec/suspend")? == Some(true) {
        return Ok(Assessment::new(Health::Suspended, "cron job is suspended"));
    }
    // The health of each run belongs to its Job.
    healthy()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use serde_json::json;

    fn job_with(spec: Value, conditions: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": spec, "status": {"conditions": conditions}})
    }

    #[test]
    fn job_rules() {
        assert_eq!(health(job_with(json!({}), json!([]))), Health::Progressing);
        assert_eq!(
            health(job_with(
                json!({}),
                json!([{"type": "Complete", "status": "True"}])
            )),
            Health::Healthy
        );
        let failed = job_with(
            json!({}),
            json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]),
        );
        assert_eq!(health(failed.clone()), Health::Degraded);
        assert_eq!(
            message(failed),
            "Job has reached the specified backoff limit"
        );
        assert_eq!(
            health(job_with(json!({"suspend": true}), json!([]))),
            Health::Suspended
        );
        assert_eq!(
            health(job_with(
                json!({}),
                json!([{"type": "Suspended", "status": "True"}])
            )),
            Health::Suspended
        );
        // A condition that is not True does not count.
        assert_eq!(
            health(job_with(
                json!({}),
                json!([{"type": "Failed", "status": "False"}])
            )),
            Health::Progressing
        );
    }

    #[test]
    fn cron_job_rules() {
        let cj = |spec: Value| json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"}, "spec": spec, "status": {}});
        assert_eq!(
            health(cj(json!({"schedule": "* * * * *"}))),
            Health::Healthy
        );
        assert_eq!(health(cj(json!({"suspend": true}))), Health::Suspended);
    }
}
