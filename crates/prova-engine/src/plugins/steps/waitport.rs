//! `waitport`: waits until `target:port` accepts connections, checking every
//! `check_interval` until `timeout` (ConTest's parameters). `protocol` is
//! `tcp` (a connect succeeds) or `udp` (a datagram can be sent and no ICMP
//! refusal comes back).

use std::time::Duration;

use tokio::time::Instant;

use crate::plugin::*;

pub struct WaitPort;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Tcp,
    Udp,
}

impl FromParam for Protocol {
    const EXPECTED: &'static str = "\"tcp\" or \"udp\"";
    fn from_param(value: &str) -> Result<Self, String> {
        match value {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            _ => Err(format!("expected {}, found {value:?}", Self::EXPECTED)),
        }
    }
}

impl Step for WaitPort {
    fn events(&self) -> Vec<EventDecl> {
        Vec::new()
    }

    fn prepare(&self, p: &mut Params<'_>) -> Option<Prepared> {
        let host = p.optional("target");
        let port = p.required_with("port", |v| match v.trim().parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("expected a port number 1-65535, found {v:?}")),
        });
        let protocol = p.or("protocol", Protocol::Tcp);
        let timeout = p.required("timeout");
        let interval = p.or("check_interval", Duration::from_millis(100));
        Prepared::per_target(WaitForPort {
            host,
            port: port?,
            protocol,
            timeout: timeout?,
            interval,
        })
    }
}

struct WaitForPort {
    host: Option<Param<String>>,
    port: Param<u16>,
    protocol: Param<Protocol>,
    timeout: Param<Duration>,
    interval: Param<Duration>,
}

#[async_trait]
impl PreparedStep for WaitForPort {
    async fn run(&self, ctx: &StepContext, target: &Target) -> Result<(), StepError> {
        let host = match &self.host {
            Some(h) => h.get(ctx, target)?,
            None if !target.fqdn.is_empty() => target.fqdn.clone(),
            None if !target.primary_ipv4.is_empty() => target.primary_ipv4.clone(),
            None => target.id.clone(),
        };
        let port = self.port.get(ctx, target)?;
        let udp = self.protocol.get(ctx, target)? == Protocol::Udp;
        let timeout = self.timeout.get(ctx, target)?;
        let interval = self.interval.get(ctx, target)?;
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
                return Err(StepError::failed(format!(
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
