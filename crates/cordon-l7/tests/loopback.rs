//! The proxy without root: a connection that was not redirected (made to
//! the proxy's own address) is reset before anything is read, and reported.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cordon_l7::{Connection, Decider, Event, Limits, Proxy, Verdict};

struct PassAll;
impl Decider for PassAll {
    fn decide(&self, _: &Connection) -> Verdict {
        Verdict::Pass
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_was_not_redirected_is_reset() {
    let proxy = Proxy::bind(&["127.0.0.1:0".parse().unwrap()]).expect("bind");
    let addr = proxy.local_addrs()[0];
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let served = tokio::spawn(proxy.serve(
        Limits::default(),
        Arc::new(PassAll),
        Arc::new(move |e| ev.lock().unwrap().push(e)),
        rx,
    ));
    let got = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // The reset may arrive before the write: then the write reports
        // it, and the read after it sees the end of the stream.
        let wrote = s.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
        let mut b = [0u8; 8];
        (
            wrote.map_err(|e| e.kind()),
            s.read(&mut b).map_err(|e| e.kind()),
        )
    })
    .await
    .unwrap();
    assert!(
        matches!(
            got,
            (
                Err(ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
                Ok(0)
            ) | (Ok(()), Err(ErrorKind::ConnectionReset))
        ),
        "not reset: {got:?}"
    );
    let all = events.lock().unwrap().clone();
    assert!(
        matches!(all.as_slice(), [Event::Refused { original_dst, .. }] if *original_dst == addr),
        "{all:?}"
    );
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(2), served)
        .await
        .expect("serve returns on shutdown")
        .unwrap();
}

/// Two connected loopback sockets.
async fn pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = tokio::net::TcpStream::connect(l.local_addr().unwrap());
    let (a, b) = tokio::join!(a, l.accept());
    (a.unwrap(), b.unwrap().0)
}

/// A bulk flow relayed with `budget`, checked to arrive intact.
async fn bulk_through(budget: Arc<cordon_l7::budget::Budget>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sent: Vec<u8> = (0..3 << 20).map(|i: u32| (i * 7 + i / 251) as u8).collect();
    let (mut client, proxy_client) = pair().await;
    let (proxy_server, mut server) = pair().await;
    let relay = tokio::spawn(async move {
        let (mut up, mut down) = (0, 0);
        cordon_l7::relay::relay(&proxy_client, &proxy_server, &budget, &mut up, &mut down).await
    });
    let data = sent.clone();
    let writer = tokio::spawn(async move {
        client.write_all(&data).await.unwrap();
        client.shutdown().await.unwrap();
        client
    });
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.unwrap();
    drop(server);
    drop(writer.await.unwrap());
    relay.await.unwrap().unwrap();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "bytes changed on the way");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_flow_without_descriptor_room_copies_and_one_with_room_gives_its_pipe_back() {
    use cordon_l7::budget::Budget;
    // Control: with room, the bulk direction takes a pipe (two
    // descriptors) and gives it back at the end.
    let roomy = Budget::new(2);
    bulk_through(roomy.clone()).await;
    assert_eq!(roomy.most(), 2, "the bulk flow took no pipe");
    assert_eq!(
        roomy.used(),
        0,
        "the pipe's descriptors were not given back"
    );
    // No room: the same flow moves every byte by copying.
    let none = Budget::new(0);
    bulk_through(none.clone()).await;
    assert_eq!(none.most(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_serves_under_the_budget_it_is_given() {
    use cordon_l7::budget::Budget;
    // One budget with room for one connection, held by an earlier proxy's
    // connection (as across a restart of the listeners): the new proxy
    // has no room, whatever its own reserve would allow.
    let shared = Budget::new(2);
    let held = shared.take(2).expect("room for one");
    let proxy = Proxy::bind(&["127.0.0.1:0".parse().unwrap()])
        .expect("bind")
        .with_budget(shared.clone());
    let addr = proxy.local_addrs()[0];
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let limits = Limits {
        reserved_descriptors: Some(0),
        ..Limits::default()
    };
    let served = tokio::spawn(proxy.serve(
        limits,
        Arc::new(PassAll),
        Arc::new(move |e| ev.lock().unwrap().push(e)),
        rx,
    ));
    let connect = move || {
        tokio::task::spawn_blocking(move || {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut b = [0u8; 8];
            s.read(&mut b).map_err(|e| e.kind())
        })
    };
    // The event follows the reset: wait for it.
    let seen = |f: fn(&[Event]) -> bool| {
        let events = events.clone();
        async move {
            for _ in 0..200 {
                if f(&events.lock().unwrap()) {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            false
        }
    };
    assert_eq!(connect().await.unwrap(), Err(ErrorKind::ConnectionReset));
    assert!(
        seen(|e| matches!(
            e,
            [Event::OverCap {
                cap: cordon_l7::Cap::Descriptors,
                ..
            }]
        ))
        .await,
        "{:?}",
        events.lock().unwrap()
    );
    // Control: once the earlier connection gives its descriptors back, the
    // next connection is admitted (and then reset as not redirected).
    drop(held);
    assert_eq!(connect().await.unwrap(), Err(ErrorKind::ConnectionReset));
    assert!(
        seen(|e| matches!(e, [Event::OverCap { .. }, Event::Refused { .. }])).await,
        "{:?}",
        events.lock().unwrap()
    );
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(2), served)
        .await
        .expect("serve returns on shutdown")
        .unwrap();
}
