//! Serves the double until Ctrl-C and writes a kubeconfig for it (context
//! `double`), to try clients by hand:
//!
//! ```sh
//! cargo run -p prova-kube-double --example serve -- /tmp/double
//! prova e2e run --kubeconfig /tmp/double/kubeconfig --context double
//! ```

#[tokio::main]
async fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let d = prova_kube_double::Double::start(Default::default()).await;
    std::fs::create_dir_all(&dir).expect("creating the kubeconfig's directory");
    let path = d.write_kubeconfig(std::path::Path::new(&dir));
    println!("serving {} ; kubeconfig {}", d.url(), path.display());
    tokio::signal::ctrl_c().await.expect("waiting for Ctrl-C");
}
