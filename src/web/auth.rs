//! HTTP basic auth against the bcrypt hashes of the web configuration: parsing the
//! `Authorization` header, the password checker (dedicated low-priority threads fed from a
//! bounded queue that serves clients in turn, [`ClientKey`]), the cache of checked credentials
//! (HMAC digests, never in clear), and the same-cost dummy hash that unknown users are checked
//! against.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::config;

/// `Basic <base64(user:password)>` -> (user, password).
pub(super) fn parse_basic_auth(value: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Threads that check passwords at once: bcrypt runs here, never on the runtime's blocking
/// pool that renders `/metrics`, so a flood of wrong passwords cannot delay a scrape.
pub const AUTH_THREADS: usize = 1;

/// Password checks one client (an IPv4 address, an IPv6 /64) may have waiting; more from it get
/// a 503 at once. The checker serves waiting clients in turn, one check each, so a client
/// flooding wrong passwords delays another client's first check by at most one check per other
/// waiting client, never by its own backlog.
pub const AUTH_QUEUE_PER_CLIENT: usize = 4;

/// Password checks waiting from all clients together; more get a 503 at once.
pub const AUTH_QUEUE: usize = 64;

/// Who sent a request, as the password checker's fairness counts clients: the IPv4 address, or
/// the /64 prefix of an IPv6 address (one host or site usually holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(std::net::IpAddr);

impl ClientKey {
    /// The key of a peer address.
    pub fn of(address: std::net::IpAddr) -> Self {
        match address {
            std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(std::net::IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(std::net::IpAddr::V6(prefix.into()))
                }
            },
            v4 => Self(v4),
        }
    }

    /// The key for requests whose peer is unknown (all share one turn).
    pub fn unknown() -> Self {
        Self(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }
}

/// The outcome of a basic-auth check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The user and password are right.
    Allowed,
    /// Unknown user or wrong password.
    Refused,
    /// Too many checks waiting: try again later (decided before the user is looked at).
    Busy,
}

/// A password to check against a bcrypt hash, and where the answer goes.
struct CheckJob {
    password: String,
    hash: String,
    answer: tokio::sync::oneshot::Sender<bool>,
}

/// The checks waiting, per client, and the order in which clients take their turns.
#[derive(Default)]
struct FairQueue {
    waiting: HashMap<ClientKey, VecDeque<CheckJob>>,
    turns: VecDeque<ClientKey>,
    total: usize,
}

impl FairQueue {
    /// Adds a check; gives it back when its client or the whole queue is full.
    fn push(
        &mut self,
        client: ClientKey,
        job: CheckJob,
        per_client: usize,
        total: usize,
    ) -> Result<(), CheckJob> {
        let mut queued = self.waiting.get(&client).map_or(0, VecDeque::len);
        if queued >= per_client || self.total >= total {
            // Checks whose requesters went away free their places before anyone is refused.
            self.drop_abandoned();
            queued = self.waiting.get(&client).map_or(0, VecDeque::len);
        }
        if queued >= per_client || self.total >= total {
            return Err(job);
        }
        if queued == 0 {
            self.turns.push_back(client);
        }
        self.waiting.entry(client).or_default().push_back(job);
        self.total += 1;
        Ok(())
    }

    /// Removes the checks nobody waits for any more.
    fn drop_abandoned(&mut self) {
        for jobs in self.waiting.values_mut() {
            jobs.retain(|job| !job.answer.is_closed());
        }
        self.waiting.retain(|_, jobs| !jobs.is_empty());
        let waiting = &self.waiting;
        self.turns.retain(|client| waiting.contains_key(client));
        self.total = self.waiting.values().map(VecDeque::len).sum();
    }

    /// The next check: the oldest of the client whose turn it is; that client goes to the back
    /// of the line if it has more waiting.
    fn pop(&mut self) -> Option<CheckJob> {
        let client = self.turns.pop_front()?;
        let jobs = self.waiting.get_mut(&client)?;
        let job = jobs.pop_front();
        if jobs.is_empty() {
            self.waiting.remove(&client);
        } else {
            self.turns.push_back(client);
        }
        self.total -= usize::from(job.is_some());
        job
    }
}

/// bcrypt checks on dedicated threads, fed from a bounded queue that serves clients in turn. A
/// check whose requester went away (request timeout, closed connection) is skipped instead of
/// computed.
pub struct PasswordChecker {
    queue: Mutex<FairQueue>,
    ready: std::sync::Condvar,
    per_client: usize,
    total: usize,
}

impl PasswordChecker {
    /// Starts `threads` checker threads with room for `per_client` waiting checks per client and
    /// `total` in all.
    pub fn start(threads: usize, per_client: usize, total: usize) -> std::io::Result<Arc<Self>> {
        let checker = Arc::new(Self {
            queue: Mutex::new(FairQueue::default()),
            ready: std::sync::Condvar::new(),
            per_client: per_client.max(1),
            total: total.max(1),
        });
        for index in 0..threads.max(1) {
            // The threads hold only a weak reference: they end when the checker is dropped.
            let weak = Arc::downgrade(&checker);
            std::thread::Builder::new()
                .name(format!("bcrypt-{index}"))
                .spawn(move || check_passwords(&weak))?;
        }
        Ok(checker)
    }

    /// Queues a check for `client`; `None` when that client's share or the queue is full.
    fn submit(
        &self,
        client: ClientKey,
        password: &str,
        hash: &str,
    ) -> Option<tokio::sync::oneshot::Receiver<bool>> {
        let (answer, receiver) = tokio::sync::oneshot::channel();
        let job = CheckJob {
            password: password.to_string(),
            hash: hash.to_string(),
            answer,
        };
        let pushed = self.queue.lock().unwrap_or_else(|e| e.into_inner()).push(
            client,
            job,
            self.per_client,
            self.total,
        );
        pushed.ok()?;
        self.ready.notify_one();
        Some(receiver)
    }

    /// The next check to compute, waiting up to a second for one (`None`: nothing came).
    fn next(&self) -> Option<CheckJob> {
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let (mut queue, _) = self
            .ready
            .wait_timeout_while(queue, Duration::from_secs(1), |queue| queue.total == 0)
            .unwrap_or_else(|e| e.into_inner());
        queue.pop()
    }
}

/// A checker thread's loop, at a lower CPU priority than collection and rendering; it ends once
/// the checker is gone.
fn check_passwords(checker: &std::sync::Weak<PasswordChecker>) {
    // SAFETY: setpriority only changes this thread's nice value (a per-thread attribute on
    // Linux); a failure leaves it at the normal priority, which is harmless.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
    }
    loop {
        let Some(live) = checker.upgrade() else {
            return;
        };
        let job = live.next();
        drop(live);
        let Some(job) = job else {
            continue;
        };
        if job.answer.is_closed() {
            continue;
        }
        let matches = bcrypt::verify(&job.password, &job.hash).unwrap_or(false);
        let _ = job.answer.send(matches);
    }
}

/// Credentials already checked, as HMAC-SHA-256 digests of user, password and hash under a key
/// drawn at start-up (never in clear, and useless for guessing without the key). Verified ones
/// let a scrape in without bcrypt; refused ones answer a repeated wrong password without bcrypt,
/// for unknown users (checked against the dummy hash) exactly as for known ones.
pub struct CredentialCache {
    key: ring::hmac::Key,
    verified: Mutex<HashSet<Digest>>,
    refused: Mutex<HashSet<Digest>>,
}

/// An HMAC-SHA-256 tag.
type Digest = [u8; 32];

/// Credentials remembered at most, per kind; a full set is cleared.
const CREDENTIAL_CACHE_LIMIT: usize = 1024;

impl CredentialCache {
    /// An empty cache with a fresh random key.
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        let _ = random_fill(&mut key);
        Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
            verified: Mutex::new(HashSet::new()),
            refused: Mutex::new(HashSet::new()),
        }
    }

    fn digest(&self, user: &str, password: &str, hash: &str) -> Digest {
        let mut context = ring::hmac::Context::with_key(&self.key);
        for part in [user, password, hash] {
            context.update(&(part.len() as u64).to_le_bytes());
            context.update(part.as_bytes());
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(context.sign().as_ref());
        digest
    }

    fn remember(set: &Mutex<HashSet<Digest>>, digest: Digest) {
        let mut set = set.lock().unwrap_or_else(|e| e.into_inner());
        if set.len() >= CREDENTIAL_CACHE_LIMIT {
            set.clear();
        }
        set.insert(digest);
    }

    fn contains(set: &Mutex<HashSet<Digest>>, digest: &Digest) -> bool {
        set.lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(digest)
    }
}

impl Default for CredentialCache {
    fn default() -> Self {
        Self::new()
    }
}

/// HTTP basic auth against bcrypt hashes. Unknown users are checked against a dummy hash of the
/// highest configured cost, so that they take as long as the slowest known user.
pub struct BasicAuth {
    users: std::collections::BTreeMap<String, String>,
    dummy_hash: String,
    checker: Arc<PasswordChecker>,
    credentials: Arc<CredentialCache>,
}

/// A bcrypt hash of `cost` with a random salt and a random digest: checking any password against
/// it costs what checking a real hash of that cost does, and never matches.
fn dummy_hash(cost: u32) -> String {
    use base64::Engine as _;
    let bcrypt_base64 = base64::engine::GeneralPurpose::new(
        &base64::alphabet::BCRYPT,
        base64::engine::general_purpose::NO_PAD,
    );
    let mut random = [0u8; 16 + 23];
    let _ = random_fill(&mut random);
    format!(
        "$2b${cost:02}${}{}",
        bcrypt_base64.encode(&random[..16]),
        bcrypt_base64.encode(&random[16..])
    )
}

fn random_fill(buffer: &mut [u8]) -> Result<(), ring::error::Unspecified> {
    use ring::rand::SecureRandom as _;
    ring::rand::SystemRandom::new().fill(buffer)
}

impl BasicAuth {
    /// Auth for these users (user -> bcrypt hash, validated by [`config::parse`]); no users
    /// means no auth.
    pub fn new(
        users: std::collections::BTreeMap<String, String>,
        checker: Arc<PasswordChecker>,
        credentials: Arc<CredentialCache>,
    ) -> Self {
        let costs: std::collections::BTreeSet<u32> = users
            .values()
            .filter_map(|hash| config::bcrypt_cost(hash))
            .collect();
        if costs.len() > 1 {
            tracing::warn!(
                "basic_auth_users have different bcrypt costs: users with a lower cost than the highest can be told from unknown users by response time; use one cost"
            );
        }
        let highest = costs.last().copied().unwrap_or(10);
        Self {
            users,
            dummy_hash: dummy_hash(highest),
            checker,
            credentials,
        }
    }

    /// True when no users are configured: every request is let in.
    pub fn is_open(&self) -> bool {
        self.users.is_empty()
    }

    /// Checks a user and password: from the caches when these credentials were checked before,
    /// otherwise on the password checker (waiting for it if needed).
    pub async fn verify(&self, client: ClientKey, user: &str, password: &str) -> Verdict {
        let (hash, known) = match self.users.get(user) {
            Some(hash) => (hash.as_str(), true),
            None => (self.dummy_hash.as_str(), false),
        };
        let digest = self.credentials.digest(user, password, hash);
        if CredentialCache::contains(&self.credentials.verified, &digest) {
            return Verdict::Allowed;
        }
        if CredentialCache::contains(&self.credentials.refused, &digest) {
            return Verdict::Refused;
        }
        let Some(answer) = self.checker.submit(client, password, hash) else {
            return Verdict::Busy;
        };
        match answer.await {
            Ok(true) if known => {
                CredentialCache::remember(&self.credentials.verified, digest);
                Verdict::Allowed
            }
            Ok(_) => {
                CredentialCache::remember(&self.credentials.refused, digest);
                Verdict::Refused
            }
            Err(_) => Verdict::Refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: ClientKey = ClientKey(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn basic_auth_headers_are_parsed() {
        // "alice:s3cr:et" in base64.
        assert_eq!(
            parse_basic_auth("Basic YWxpY2U6czNjcjpldA=="),
            Some(("alice".to_string(), "s3cr:et".to_string()))
        );
        assert_eq!(
            parse_basic_auth("basic YWxpY2U6czNjcjpldA=="),
            Some(("alice".to_string(), "s3cr:et".to_string()))
        );
        assert_eq!(parse_basic_auth("Bearer abc"), None);
        assert_eq!(parse_basic_auth("Basic !!!"), None);
        assert_eq!(parse_basic_auth("Basic bm9jb2xvbg=="), None);
    }

    #[test]
    fn a_flood_of_distinct_credentials_keeps_each_cache_bounded() {
        let cache = CredentialCache::new();
        for n in 0..3 * CREDENTIAL_CACHE_LIMIT {
            let digest = cache.digest("mallory", &format!("guess-{n}"), "$2b$04$hash");
            CredentialCache::remember(&cache.refused, digest);
            assert!(
                cache.refused.lock().unwrap().len() <= CREDENTIAL_CACHE_LIMIT,
                "after {n} guesses"
            );
        }
        // The latest is remembered: a full set is cleared before the new digest goes in.
        let last = cache.digest(
            "mallory",
            &format!("guess-{}", 3 * CREDENTIAL_CACHE_LIMIT - 1),
            "$2b$04$hash",
        );
        assert!(CredentialCache::contains(&cache.refused, &last));
        assert!(cache.verified.lock().unwrap().is_empty());
    }

    fn auth_for(users: &[(&str, &str)], checker: &Arc<PasswordChecker>) -> BasicAuth {
        BasicAuth::new(
            users
                .iter()
                .map(|(user, password)| (user.to_string(), bcrypt::hash(password, 4).unwrap()))
                .collect(),
            Arc::clone(checker),
            Arc::new(CredentialCache::new()),
        )
    }

    #[tokio::test]
    async fn bcrypt_verification_accepts_the_right_password_only() {
        let checker = PasswordChecker::start(1, 8, 64).unwrap();
        let auth = auth_for(&[("alice", "s3cret")], &checker);
        assert!(!auth.is_open());
        assert_eq!(
            auth.verify(LOCAL, "alice", "s3cret").await,
            Verdict::Allowed
        );
        // The second time comes from the cache.
        assert_eq!(
            auth.verify(LOCAL, "alice", "s3cret").await,
            Verdict::Allowed
        );
        assert_eq!(auth.verify(LOCAL, "alice", "wrong").await, Verdict::Refused);
        assert_eq!(auth.verify(LOCAL, "alice", "wrong").await, Verdict::Refused);
        assert_eq!(auth.verify(LOCAL, "bob", "s3cret").await, Verdict::Refused);
        assert_eq!(auth.verify(LOCAL, "", "").await, Verdict::Refused);
        assert!(auth_for(&[], &checker).is_open());
    }

    #[tokio::test]
    async fn repeated_credentials_cost_no_bcrypt_for_known_and_unknown_users_alike() {
        // A checker whose only thread is kept busy: anything that needs bcrypt waits.
        let checker = PasswordChecker::start(1, 8, 64).unwrap();
        let auth = auth_for(&[("alice", "s3cret")], &checker);
        for (user, password, verdict) in [
            ("alice", "s3cret", Verdict::Allowed),
            ("alice", "wrong", Verdict::Refused),
            ("nobody", "wrong", Verdict::Refused),
        ] {
            assert_eq!(auth.verify(LOCAL, user, password).await, verdict);
        }
        let slow = bcrypt::hash("x", 12).unwrap();
        let blocker = checker.submit(LOCAL, "y", &slow).unwrap();
        for (user, password, verdict) in [
            ("alice", "s3cret", Verdict::Allowed),
            ("alice", "wrong", Verdict::Refused),
            ("nobody", "wrong", Verdict::Refused),
        ] {
            let answered = tokio::time::timeout(
                Duration::from_millis(50),
                auth.verify(LOCAL, user, password),
            )
            .await
            .expect("answered from the cache while bcrypt is busy");
            assert_eq!(answered, verdict);
        }
        assert_eq!(blocker.await, Ok(false));
    }

    #[tokio::test]
    async fn a_full_queue_is_busy_at_once_and_abandoned_checks_are_skipped() {
        let checker = PasswordChecker::start(1, 2, 64).unwrap();
        let slow = bcrypt::hash("x", 12).unwrap();
        let running = checker.submit(LOCAL, "a", &slow).unwrap();
        // Wait until the thread has taken the first job (it stays busy with it for a cost-12
        // check), then fill the queue.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while checker.queue.lock().unwrap().total > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the checker took no job"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let abandoned: Vec<_> = (0..2)
            .map(|_| checker.submit(LOCAL, "b", &slow).unwrap())
            .collect();
        assert!(checker.submit(LOCAL, "c", &slow).is_none(), "queue full");
        // The waiting checks' requesters give up: their places are freed at once, so they are
        // never computed and a new check takes a place while the first is still running.
        drop(abandoned);
        let after = checker
            .submit(LOCAL, "d", &bcrypt::hash("d", 4).unwrap())
            .expect("the abandoned checks freed their places");
        assert_eq!(checker.queue.lock().unwrap().total, 1, "only d waits");
        assert_eq!(running.await, Ok(false));
        assert_eq!(after.await, Ok(true));
    }

    #[test]
    fn the_dummy_hash_has_the_requested_cost_and_never_matches() {
        for cost in [4, 10, 14] {
            let dummy = dummy_hash(cost);
            assert_eq!(config::bcrypt_cost(&dummy), Some(cost), "{dummy}");
            assert_ne!(dummy, dummy_hash(cost), "random each time");
        }
        assert_eq!(bcrypt::verify("anything", &dummy_hash(4)).ok(), Some(false));
    }

    #[test]
    fn unknown_users_are_checked_at_the_highest_configured_cost() {
        let checker = PasswordChecker::start(1, 8, 64).unwrap();
        let auth = BasicAuth::new(
            [
                ("a".to_string(), bcrypt::hash("x", 4).unwrap()),
                ("b".to_string(), bcrypt::hash("x", 6).unwrap()),
            ]
            .into_iter()
            .collect(),
            checker,
            Arc::new(CredentialCache::new()),
        );
        assert_eq!(config::bcrypt_cost(&auth.dummy_hash), Some(6));
    }

    #[test]
    fn clients_are_keyed_by_ipv4_address_and_ipv6_64() {
        let key = |text: &str| ClientKey::of(text.parse().unwrap());
        assert_eq!(key("192.0.2.1"), key("::ffff:192.0.2.1"));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }

    #[test]
    fn the_queue_serves_clients_in_turn_and_bounds_each_and_all() {
        // The requesters wait (their receivers are kept), so no check is abandoned.
        let requesters = std::cell::RefCell::new(Vec::new());
        let job = |password: &str| {
            let (answer, receiver) = tokio::sync::oneshot::channel();
            requesters.borrow_mut().push(receiver);
            CheckJob {
                password: password.to_string(),
                hash: String::new(),
                answer,
            }
        };
        let flood = ClientKey::of("192.0.2.66".parse().unwrap());
        let scraper = ClientKey::of("192.0.2.10".parse().unwrap());
        let mut queue = FairQueue::default();
        for n in 0..3 {
            assert!(queue.push(flood, job(&format!("f{n}")), 3, 5).is_ok());
        }
        assert!(
            queue.push(flood, job("f3"), 3, 5).is_err(),
            "the flood's share is full"
        );
        assert!(queue.push(scraper, job("s0"), 3, 5).is_ok());
        assert!(queue.push(scraper, job("s1"), 3, 5).is_ok());
        let third = ClientKey::of("192.0.2.20".parse().unwrap());
        assert!(
            queue.push(third, job("t0"), 3, 5).is_err(),
            "the whole queue is full"
        );
        // The scraper's first check comes second, not behind the flood's backlog.
        let order: Vec<String> = std::iter::from_fn(|| queue.pop().map(|j| j.password)).collect();
        assert_eq!(order, ["f0", "s0", "f1", "s1", "f2"]);
        assert_eq!(queue.total, 0);
        assert!(queue.waiting.is_empty() && queue.turns.is_empty());
        // A requester that went away frees its place for the next one.
        assert!(queue.push(flood, job("g0"), 1, 5).is_ok());
        assert!(queue.push(flood, job("g1"), 1, 5).is_err());
        requesters.borrow_mut().clear();
        assert!(queue.push(flood, job("g2"), 1, 5).is_ok());
        assert_eq!(queue.pop().map(|j| j.password).as_deref(), Some("g2"));
    }

    #[tokio::test]
    async fn a_flooding_client_does_not_delay_another_clients_first_check() {
        // One thread; the flood fills its share with slow checks; another client's check is
        // computed right after the one running, not after the flood's backlog.
        let checker = PasswordChecker::start(1, 4, 64).unwrap();
        let slow = bcrypt::hash("x", 12).unwrap();
        let flood = ClientKey::of("192.0.2.66".parse().unwrap());
        // Four wait; one more may be running already.
        let mut backlog: Vec<_> = std::iter::from_fn(|| checker.submit(flood, "y", &slow))
            .take(10)
            .collect();
        assert!((4..=5).contains(&backlog.len()), "{}", backlog.len());
        let fast = bcrypt::hash("right", 4).unwrap();
        let answer = checker
            .submit(LOCAL, "right", &fast)
            .expect("another client gets a place");
        assert_eq!(answer.await, Ok(true));
        // When the other client's answer came, at most the check running when it arrived and
        // the flood's next turn can have been computed, not the flood's whole backlog.
        let flood_answered = backlog
            .iter_mut()
            .map(|receiver| receiver.try_recv())
            .filter(Result::is_ok)
            .count();
        assert!(
            flood_answered <= 2,
            "{flood_answered} flood checks were computed first"
        );
        drop(backlog);
    }
}
