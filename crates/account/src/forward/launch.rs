//! How the message side starts the worker: [`WorkerLauncher`], with an in-process adapter
//! (`super::flow::InProcessLauncher`, next to the worker it runs: a tokio task, for `make run`
//! and tests) and a Lambda one
//! ([`LambdaLauncher`]: an asynchronous invoke of the `worker` function, which keeps running after
//! the message function has answered and been frozen). The payload is a [`ForwardJob`].

use std::future::Future;

use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde::{Deserialize, Serialize};

use super::request::ForwardRequest;
use crate::config::vars::WORKER_FUNCTION_NAME;
use crate::config::{ConfigError, Env, required};
use crate::rules::ForwardSpec;

/// One push for the worker: the `msg#` key, the rule, and the request to POST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardJob {
    pub key: String,
    pub spec: ForwardSpec,
    pub request: ForwardRequest,
}

/// The worker could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the worker could not be started: {0}")]
pub struct LaunchError(pub String);

/// Starts the worker on a job and returns without waiting for it.
pub trait WorkerLauncher: Send + Sync {
    fn launch(&self, job: ForwardJob) -> impl Future<Output = Result<(), LaunchError>> + Send;
}

/// Invokes the `worker` function asynchronously (`InvocationType::Event`): Lambda queues the job
/// and answers 202 at once.
#[derive(Debug, Clone)]
pub struct LambdaLauncher {
    lambda: aws_sdk_lambda::Client,
    function_name: String,
}

impl LambdaLauncher {
    pub fn new(lambda: aws_sdk_lambda::Client, function_name: impl Into<String>) -> Self {
        Self {
            lambda,
            function_name: function_name.into(),
        }
    }

    /// `WORKER_FUNCTION_NAME` (name or ARN of the worker function) from `env`.
    pub fn from_env(env: &impl Env, lambda: aws_sdk_lambda::Client) -> Result<Self, ConfigError> {
        Ok(Self::new(lambda, required(env, WORKER_FUNCTION_NAME)?))
    }

    async fn invoke(&self, job: ForwardJob) -> Result<(), LaunchError> {
        let payload = serde_json::to_vec(&job).map_err(|e| LaunchError(e.to_string()))?;
        let output = self
            .lambda
            .invoke()
            .function_name(&self.function_name)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| LaunchError(DisplayErrorContext(&e).to_string()))?;
        match output.status_code() {
            202 => Ok(()),
            other => Err(LaunchError(format!("Lambda answered {other}, not 202"))),
        }
    }
}

impl WorkerLauncher for LambdaLauncher {
    fn launch(&self, job: ForwardJob) -> impl Future<Output = Result<(), LaunchError>> + Send {
        self.invoke(job)
    }
}
