//! A TAM HTTP server on loopback with the test world's engine, store and Verifier.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use teep_attest::appraiser::{Appraiser, InProcess};
use teep_cose::{Curve, PrivateKey};
use teep_tam::MemoryStore;
use teep_tam::http::{Server, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::{World, provider};

/// A TAM on loopback with the test world's engine and store, and a Verifier.
pub struct Running<A = InProcess> {
    pub addr: SocketAddr,
    pub server: Arc<Server<MemoryStore, A>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    pub world: World,
}

impl<A: Appraiser + Send + Sync + 'static> Running<A> {
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

/// The test world's TAM, with its in-process Verifier.
pub async fn start(config: ServerConfig) -> Running {
    let mut world = World::new();
    let verifier = std::mem::replace(&mut world.verifier, spare_verifier());
    start_with(config, world, verifier).await
}

/// `world`'s TAM and store (the world keeps a replica and an empty store) with `appraiser`.
pub async fn start_with<A: Appraiser + Send + Sync + 'static>(
    config: ServerConfig,
    mut world: World,
    appraiser: A,
) -> Running<A> {
    let replica = world.replica();
    let tam = std::mem::replace(&mut world.tam, replica);
    let store = std::mem::take(&mut world.store);
    let server = Arc::new(Server::new(tam, store, appraiser, config));
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
