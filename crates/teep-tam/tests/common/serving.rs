//! A TAM HTTP server on loopback with the test world's engine, store and Verifier.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use teep_attest::appraiser::InProcess;
use teep_cose::{Curve, PrivateKey};
use teep_tam::MemoryStore;
use teep_tam::http::{Server, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::{World, provider};

/// A TAM on loopback with the test world's engine, store and Verifier.
pub struct Running {
    pub addr: SocketAddr,
    pub server: Arc<Server<MemoryStore, InProcess>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    pub world: World,
}

impl Running {
    pub fn store(&self) -> &MemoryStore {
        self.server.store()
    }

    /// Stops the server and waits until it has.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server did not stop")
            .unwrap();
    }
}

pub async fn start(config: ServerConfig) -> Running {
    let mut world = World::new();
    let replica = world.replica();
    let tam = std::mem::replace(&mut world.tam, replica);
    let store = std::mem::take(&mut world.store);
    let verifier = std::mem::replace(&mut world.verifier, spare_verifier());
    let server = Arc::new(Server::new(tam, store, verifier, config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.clone().serve(listener, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        server,
        stop: Some(stop),
        task,
        world,
    }
}

/// A Verifier left in the world in place of the one the server took (never asked).
fn spare_verifier() -> InProcess {
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let attestation = PrivateKey::generate(Curve::P256).unwrap();
    InProcess::new(teep_attest::SigningVerifier::new(
        teep_attest::Verifier::new(
            super::verifier_policy(attestation.public_key()),
            super::verifier_id(),
        ),
        super::signer(&key),
        provider(),
    ))
}
