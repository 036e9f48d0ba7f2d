//! The parameters every SSH step shares: where to connect, as whom, and how
//! the host key is checked. Read once while the job is prepared; turned into
//! a [`ConnectConfig`] per target.

use std::path::PathBuf;
use std::time::Duration;

use prova_engine::plugin::{DescriptorFile, FromParam, Param, Params, Render, StepError, Target};

use crate::config::{Agent, Auth, ConnectConfig, DEFAULT_CONNECT_TIMEOUT, HostKeyPolicy};
use crate::config::{DEFAULT_PORT, PrivateKeyFile};
use crate::host_key;

/// The login parameters, prepared.
pub struct LoginParams {
    host: Param<String>,
    port: Param<u16>,
    user: Param<String>,
    private_key_file: Option<Param<String>>,
    password: Option<Param<String>>,
    skip_if_empty_host: Param<bool>,
    host_keys: HostKeys,
    use_agent: Param<bool>,
    connect_timeout: Param<Duration>,
    /// Where relative file names resolve (the descriptor's folder), and the
    /// server's files root they must stay beneath.
    files: FileBase,
}

/// How the host key is checked, as written.
enum HostKeys {
    KnownHosts(Option<Param<String>>),
    Fingerprint(Param<String>),
    Insecure,
}

#[derive(Clone, Default)]
struct FileBase {
    descriptor_dir: Option<PathBuf>,
    files_root: Option<PathBuf>,
}

impl FileBase {
    /// A file named in the descriptor, as a path on this machine.
    fn resolve(&self, named: &str) -> Result<PathBuf, String> {
        DescriptorFile::new(
            named,
            self.descriptor_dir.as_deref(),
            self.files_root.as_deref(),
        )
        .map(|f| f.display_path())
    }
}

/// A non-empty value (ConTest checks `host`, `user` and `executable` so).
pub fn non_empty(what: &'static str) -> impl Fn(&str) -> Result<String, String> + Send + Sync {
    move |v| {
        if v.trim().is_empty() {
            Err(format!("expected {what}, found an empty string"))
        } else {
            Ok(v.to_string())
        }
    }
}

fn port(v: &str) -> Result<u16, String> {
    match u16::from_param(v)? {
        0 => Err("expected a port from 1 to 65535, found 0".into()),
        p => Ok(p),
    }
}

fn fingerprint(v: &str) -> Result<String, String> {
    host_key::parse_fingerprint(v)
        .map(|_| v.trim().to_string())
        .map_err(|e| e.to_string())
}

/// A positive duration.
pub fn positive_duration(v: &str) -> Result<Duration, String> {
    let d = Duration::from_param(v)?;
    if d.is_zero() {
        return Err(format!("expected a duration above zero, found {v:?}"));
    }
    Ok(d)
}

impl LoginParams {
    /// Reads the login parameters; `None` when one is missing (what is
    /// wrong is recorded in `p`).
    pub fn read(p: &mut Params<'_>) -> Option<LoginParams> {
        // Empty is refused as written (ConTest's check), not as rendered:
        // a template rendering "" is `skip_if_empty_host`'s case.
        let host = p.required::<String>("host");
        if host
            .as_ref()
            .and_then(|h| h.as_fixed())
            .is_some_and(|h| h.trim().is_empty())
        {
            p.error_at(
                "host",
                0,
                "expected a host name or address, found an empty string",
            );
        }
        let user = p.required_with("user", non_empty("a user name"));
        let port = p
            .optional_with("port", port)
            .unwrap_or_else(|| Param::fixed(DEFAULT_PORT));
        let files = FileBase {
            descriptor_dir: p.prepare_ctx().descriptor_dir.map(PathBuf::from),
            files_root: p.prepare_ctx().files_root.map(PathBuf::from),
        };
        let private_key_file = p.optional::<String>("private_key_file");
        let password = p.optional::<String>("password");
        let skip_if_empty_host = p.or("skip_if_empty_host", false);
        let use_agent = p.or("use_agent", true);
        let connect_timeout = p
            .optional_with("connect_timeout", positive_duration)
            .unwrap_or_else(|| Param::fixed(DEFAULT_CONNECT_TIMEOUT));
        let known_hosts = p.optional_with("known_hosts", non_empty("a known_hosts file"));
        let pin = p.optional_with("host_key_fingerprint", fingerprint);
        let insecure = p.optional::<bool>("insecure_ignore_host_key");
        let insecure_on = insecure
            .as_ref()
            .is_some_and(|i| i.as_fixed() == Some(&true));
        if insecure.as_ref().is_some_and(|i| i.as_fixed().is_none()) {
            p.error(
                "insecure_ignore_host_key",
                "expected true or false written in the descriptor, found a template: turning host-key checks off must be explicit",
            );
        }
        let chosen = [known_hosts.is_some(), pin.is_some(), insecure_on];
        if chosen.iter().filter(|c| **c).count() > 1 {
            p.step_error(
                "give one of known_hosts, host_key_fingerprint and insecure_ignore_host_key: true, not several",
            );
        }
        // Fixed file names are checked now (outside the files root, ...).
        for (key, value) in [
            ("private_key_file", &private_key_file),
            ("known_hosts", &known_hosts),
        ] {
            if let Some(name) = value.as_ref().and_then(|v| v.as_fixed())
                && !name.is_empty()
                && let Err(e) = files.resolve(name)
            {
                p.error(key, e);
            }
        }
        let host_keys = match (pin, insecure_on) {
            (Some(pin), _) => HostKeys::Fingerprint(pin),
            (None, true) => HostKeys::Insecure,
            (None, false) => HostKeys::KnownHosts(known_hosts),
        };
        Some(LoginParams {
            port,
            private_key_file,
            password,
            skip_if_empty_host,
            host_keys,
            use_agent,
            connect_timeout,
            files,
            host: host?,
            user: user?,
        })
    }

    /// The connection for `target`; `None` when `host` rendered empty and
    /// `skip_if_empty_host` is set (ConTest: the target passes untouched).
    pub fn config(
        &self,
        ctx: &(impl Render + ?Sized),
        target: &Target,
    ) -> Result<Option<ConnectConfig>, StepError> {
        let host = self.host.get(ctx, target)?.trim().to_string();
        if host.is_empty() {
            if self.skip_if_empty_host.get(ctx, target)? {
                return Ok(None);
            }
            return Err(StepError::failed(format!(
                "host value is empty for target {} (set skip_if_empty_host: true to skip such targets)",
                target.id
            )));
        }
        let file = |p: &Param<String>, key: &str| -> Result<Option<PathBuf>, StepError> {
            let name = p.get(ctx, target)?;
            if name.trim().is_empty() {
                return Ok(None);
            }
            self.files
                .resolve(&name)
                .map(Some)
                .map_err(|message| StepError::Params {
                    param: key.to_string(),
                    message,
                })
        };
        let private_key = match &self.private_key_file {
            Some(p) => file(p, "private_key_file")?.map(PrivateKeyFile::new),
            None => None,
        };
        let password = match &self.password {
            Some(p) => Some(p.get(ctx, target)?).filter(|p| !p.is_empty()),
            None => None,
        };
        let host_keys = match &self.host_keys {
            HostKeys::KnownHosts(None) => HostKeyPolicy::KnownHosts(None),
            HostKeys::KnownHosts(Some(p)) => HostKeyPolicy::KnownHosts(file(p, "known_hosts")?),
            HostKeys::Fingerprint(p) => HostKeyPolicy::Fingerprint(p.get(ctx, target)?),
            HostKeys::Insecure => HostKeyPolicy::Insecure,
        };
        Ok(Some(ConnectConfig {
            // `[::1]` as written in ConTest's descriptors is the address ::1.
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: self.port.get(ctx, target)?,
            user: self.user.get(ctx, target)?,
            auth: Auth {
                agent: if self.use_agent.get(ctx, target)? {
                    Agent::FromEnv
                } else {
                    Agent::Off
                },
                private_key,
                password,
            },
            host_keys,
            connect_timeout: self.connect_timeout.get(ctx, target)?,
        }))
    }
}
