//! `ctct-sync health`: asks a running daemon's ops listener whether it is alive, for a
//! container's health check where there is no HTTP client (the image has no curl).
//!
//! It sends one `GET` to `http://<ops.listen>/healthz` (an unspecified listen address such
//! as `0.0.0.0` is asked on loopback), or to `--url`, and exits 0 when the answer is 200 and
//! 1 otherwise — no answer within the timeout, a refused connection, another status, a
//! configuration that does not load, an ops listener that is off. It prints one line either
//! way and logs nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::config::Settings;
use crate::ops::HEALTHZ_PATH;

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The URL to ask instead of `http://<ops.listen>/healthz` (the configuration is then not
    /// read), e.g. http://127.0.0.1:9464/readyz for readiness.
    #[arg(long, value_name = "URL")]
    pub url: Option<url::Url>,

    /// How long to wait for the whole answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub timeout_ms: u64,
}

/// Runs the check and prints its one line: on stdout when healthy, on stderr otherwise.
pub async fn run(config: Option<&Path>, args: HealthArgs) -> ExitCode {
    match check(config, &args).await {
        Ok(line) => {
            println!("healthy: {line}");
            ExitCode::SUCCESS
        }
        Err(line) => {
            eprintln!("unhealthy: {line}");
            ExitCode::from(1)
        }
    }
}

async fn check(config: Option<&Path>, args: &HealthArgs) -> Result<String, String> {
    let url = match &args.url {
        Some(url) => {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!("--url {url}: an http:// or https:// URL"));
            }
            url.clone()
        }
        None => {
            let env = std::env::vars().collect();
            let settings = Settings::load(config, env)
                .map_err(|e| format!("the configuration does not load: {e}"))?;
            if !settings.ops.enabled {
                return Err(
                    "the ops listener is off (ops.enabled = false): nothing answers /healthz"
                        .to_owned(),
                );
            }
            healthz_url(settings.ops.listen)
        }
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        // The ops listener is local: an HTTP_PROXY in the container's environment must not
        // carry the check elsewhere.
        .no_proxy()
        .user_agent(concat!("ctct-sync-health/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("{url}: {}", innermost(&e)))?;
    match client.get(url.clone()).send().await {
        Ok(response) if response.status() == reqwest::StatusCode::OK => {
            Ok(format!("{url} answered {}", response.status()))
        }
        Ok(response) => Err(format!("{url} answered {}", response.status())),
        Err(e) if e.is_timeout() => Err(format!(
            "{url}: no answer within {} ms",
            timeout.as_millis()
        )),
        Err(e) => Err(format!("{url}: {}", innermost(&e))),
    }
}

/// `/healthz` on the ops listener at `listen`, asked on loopback when it listens on every
/// address (`0.0.0.0`, `[::]`).
pub fn healthz_url(listen: SocketAddr) -> url::Url {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let address = SocketAddr::new(ip, listen.port());
    url::Url::parse(&format!("http://{address}{HEALTHZ_PATH}"))
        .expect("a socket address makes a valid URL")
}

/// The last cause of an error's chain (`Connection refused (os error 111)`), which says what
/// happened without reqwest's layers around it.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_address_is_asked_on_loopback() {
        let at = |listen: &str| healthz_url(listen.parse().unwrap()).to_string();
        assert_eq!(at("0.0.0.0:9464"), "http://127.0.0.1:9464/healthz");
        assert_eq!(at("[::]:9464"), "http://[::1]:9464/healthz");
        assert_eq!(at("127.0.0.1:9500"), "http://127.0.0.1:9500/healthz");
        assert_eq!(at("10.1.2.3:9464"), "http://10.1.2.3:9464/healthz");
    }
}
