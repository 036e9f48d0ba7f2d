//! `sshfetch`: brings a remote directory back from the target over SFTP
//! into its artifacts directory, and reads its JUnit files into
//! `TestCaseResult` events: the results of a suite an earlier step ran (a
//! long `sshcmd`, a reboot, a service) or that the target writes itself.
//! `sshcmd`'s `results_dir` does the same right after its command.
//!
//! Not named `sshcopy`: ConTest's `sshcopy` uploads to the target, and a
//! descriptor written for it must not silently download instead.

use prova_engine::plugin::*;

use super::StepPool;
use super::login::{LoginParams, non_empty};
use super::results;

/// The `sshfetch` step.
pub struct SshFetch {
    pub(super) pool: StepPool,
}

impl Step for SshFetch {
    fn events(&self) -> Vec<EventDecl> {
        results::events()
    }

    fn prepare(&self, p: &mut Params<'_>) -> Option<Prepared> {
        let login = LoginParams::read(p);
        let source = p.required_with("source", non_empty("a remote directory"));
        let fetch = Fetch {
            fail_on_test_failures: p.or("fail_on_test_failures", true),
            pool: self.pool.clone(),
            login: login?,
            source: source?,
        };
        p.ok()
            .then_some(Prepared::PerTarget(std::sync::Arc::new(fetch)))
    }
}

/// `sshfetch`, prepared.
struct Fetch {
    login: LoginParams,
    source: Param<String>,
    fail_on_test_failures: Param<bool>,
    pool: StepPool,
}

#[async_trait]
impl PreparedStep for Fetch {
    async fn run(&self, ctx: &StepContext, target: &Target) -> Result<(), StepError> {
        let Some(config) = self.login.config(ctx, target)? else {
            return Ok(());
        };
        let source = self.source.get(ctx, target)?;
        let ingested = results::fetch(&self.pool.get(), &config, &source, ctx, target).await?;
        if self.fail_on_test_failures.get(ctx, target)?
            && let Some(verdict) = ingested.failure_message()
        {
            return Err(StepError::failed(format!("{}: {verdict}", config.target())));
        }
        Ok(())
    }
}
