//! Leader election against the in-memory API server: one leader among
//! several replicas, and a takeover when the leader goes away.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tollgate_controller::leader::{LeaderConfig, run_leader_election};
use tollgate_e2e::apiserver::ApiServer;

const LEASE: Duration = Duration::from_secs(2);
const RENEW: Duration = Duration::from_millis(250);

async fn client(server: &ApiServer) -> Client {
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig()).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// One replica campaigning with short timings.
struct Replica {
    leading: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

async fn replica(server: &ApiServer, identity: &str) -> Replica {
    let config = LeaderConfig {
        lease_duration: LEASE,
        renew_every: RENEW,
        ..LeaderConfig::new("default", "tollgate-controller", identity)
    };
    let (tx, leading) = watch::channel(false);
    let task = tokio::spawn(run_leader_election(client(server).await, config, tx));
    Replica { leading, task }
}

fn leaders(replicas: &[&Replica]) -> usize {
    replicas.iter().filter(|r| *r.leading.borrow()).count()
}

fn holder(server: &ApiServer) -> Option<String> {
    let lease = server
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some("default"),
            "tollgate-controller",
        )
        .unwrap();
    lease["spec"]["holderIdentity"].as_str().map(str::to_string)
}

/// Samples the replicas every 10 ms for `span`: never two leaders at once.
async fn never_two_leaders(replicas: &[&Replica], span: Duration) {
    let end = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < end {
        assert!(leaders(replicas) <= 1, "two leaders at once");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `replica` leads; fails after `within`.
async fn leads_within(replica: &Replica, within: Duration) {
    let mut rx = replica.leading.clone();
    tokio::time::timeout(within, rx.wait_for(|l| *l))
        .await
        .expect("took over in time")
        .unwrap();
}

/// Three replicas racing for one Lease: exactly one leads, the Lease names
/// it, and it keeps leading through many renewals.
#[tokio::test]
async fn exactly_one_of_three_leads() {
    let server = ApiServer::start().await.unwrap();
    let (a, b, c) = (
        replica(&server, "a").await,
        replica(&server, "b").await,
        replica(&server, "c").await,
    );
    let all = [&a, &b, &c];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while leaders(&all) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "nobody leads");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let index = all.iter().position(|r| *r.leading.borrow()).unwrap();
    never_two_leaders(&all, LEASE * 2).await;
    assert!(*all[index].leading.borrow(), "the same replica still leads");
    assert_eq!(holder(&server).as_deref(), Some(["a", "b", "c"][index]));
}

/// When the leader's task stops dead (no release), another replica leads
/// once the Lease expires: within the lease duration plus one check.
#[tokio::test]
async fn another_replica_takes_over_when_the_leader_stops() {
    let server = ApiServer::start().await.unwrap();
    let first = replica(&server, "first").await;
    leads_within(&first, Duration::from_secs(5)).await;
    let second = replica(&server, "second").await;
    never_two_leaders(&[&first, &second], RENEW * 4).await;
    assert!(!*second.leading.borrow());

    first.task.abort();
    leads_within(&second, LEASE + RENEW * 4).await;
    assert_eq!(holder(&server).as_deref(), Some("second"));
}

/// A replica whose receivers are all gone releases the Lease, so the next
/// one need not wait for it to expire.
#[tokio::test]
async fn a_replica_that_stops_releases_the_lease() {
    let server = ApiServer::start().await.unwrap();
    let first = replica(&server, "first").await;
    leads_within(&first, Duration::from_secs(5)).await;
    let second = replica(&server, "second").await;
    let Replica { leading, task } = first;
    drop(leading);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(holder(&server).as_deref(), Some("first"), "released");
    leads_within(&second, Duration::from_secs(5)).await;
}
