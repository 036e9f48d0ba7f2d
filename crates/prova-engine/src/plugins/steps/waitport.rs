//! `waitport`: waits until `target:port` accepts connections, checking every
//! `check_interval` until `timeout` (ConTest's parameters). `protocol` is
//! `tcp` (a connect succeeds) or `udp` (a datagram can be sent and no ICMP
//! refusal comes back).

use std::time::Duration;

use async_trait::async_trait;
use prova_core::Target;
use prova_core::descriptor::{StepDescriptor, StepParams};
use prova_core::diag::Diagnostics;
use tokio::time::Instant;

use crate::plugin::{Step, StepError};
use crate::plugins::params;
use crate::runner::step_ctx::StepContext;

pub struct WaitPort;

#[async_trait]
impl Step for WaitPort {
    fn validate(&self, step: &StepDescriptor, diags: &mut Diagnostics) {
        let p = &step.parameters;
        params::require_one(step, "port", diags);
        params::require_one(step, "timeout", diags);
        params::check_one(p, "port", diags, |v| {
            v.parse::<u16>()
                .map(|_| ())
                .map_err(|_| format!("expected a port number 1-65535, found {v:?}"))
        });
        params::check_one(p, "protocol", diags, |v| match v {
            "tcp" | "udp" => Ok(()),
            _ => Err(format!("expected \"tcp\" or \"udp\", found {v:?}")),
        });
        params::check_one(p, "timeout", diags, |v| {
            params::parse_duration(v).map(|_| ())
        });
        params::check_one(p, "check_interval", diags, |v| {
            params::parse_duration(v).map(|_| ())
        });
    }

    async fn run(
        &self,
        ctx: &StepContext,
        target: &Target,
        p: &StepParams,
    ) -> Result<(), StepError> {
        let host = match p.one("target") {
            Some(h) => h.to_string(),
            None if !target.fqdn.is_empty() => target.fqdn.clone(),
            None if !target.primary_ipv4.is_empty() => target.primary_ipv4.clone(),
            None => target.id.clone(),
        };
        let port: u16 = params::one(p, "port")?
            .parse()
            .map_err(|_| StepError::Params("port: expected a port number".into()))?;
        let udp = p.one("protocol") == Some("udp");
        let timeout = params::duration_or(p, "timeout", Duration::from_secs(30))?;
        let interval = params::duration_or(p, "check_interval", Duration::from_millis(100))?;
        let deadline = Instant::now() + timeout;
        let addr = format!("{host}:{port}");
        loop {
            let attempt =
                tokio::time::timeout(interval.max(Duration::from_millis(10)), probe(&addr, udp));
            let last_err = match attempt.await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => e,
                Err(_) => "no answer".to_string(),
            };
            if Instant::now() >= deadline {
                return Err(StepError::Failed(format!(
                    "port {addr}/{} not open after {timeout:?}: {last_err}",
                    if udp { "udp" } else { "tcp" }
                )));
            }
            tokio::select! {
                _ = tokio::time::sleep_until((Instant::now() + interval).min(deadline)) => {}
                _ = ctx.cancel.cancelled() => return Err(StepError::Cancelled),
            }
        }
    }
}

async fn probe(addr: &str, udp: bool) -> Result<(), String> {
    if udp {
        let sock = tokio::net::UdpSocket::bind("0.0.0.0:0")
            .await
            .map_err(|e| e.to_string())?;
        sock.connect(addr).await.map_err(|e| e.to_string())?;
        sock.send(&[]).await.map_err(|e| e.to_string())?;
        Ok(())
    } else {
        tokio::net::TcpStream::connect(addr)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
