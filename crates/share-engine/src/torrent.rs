//! One torrent: its shared state, the tasks that serve it, and the handle front-ends hold.
//!
//! All mutable state of a torrent sits in one [`State`] behind one `std::sync::Mutex`. It is
//! never held across an `.await` (the workspace denies `clippy::await_holding_lock`): every
//! critical section is a few map and picker operations, and anything slow (hashing, disk,
//! sockets) happens outside it. Tasks: the listener, one task pair per peer (reader and
//! writer, `peer.rs`), the tracker client, the choker, the progress ticker, and one short task
//! per piece being verified. All are tracked and stop on the torrent's cancellation token.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use share_proto::bitfield::Bitfield;
use share_proto::geometry::Geometry;
use share_proto::metainfo::Metainfo;
use share_proto::{InfoHash, PeerId};
use tokio::sync::{broadcast, watch, Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::candidates::{Candidates, MAX_CANDIDATES};
use crate::chat::{ChatState, PeerInfo, SendError};
use crate::config::Config;
use crate::encryption::PeerStream;
use crate::error::TorrentError;
use crate::event::{Event, Stats, TorrentState};
use crate::peer::Opening;
use crate::picker::{Assembled, PeerKey, Picker};
use crate::session::{Core, Session, SessionConfig, TorrentId, HEAD_LEN};
use crate::storage::{FileStorage, NoStorage, Storage};

/// Whether we start with the data or without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The files exist and are trusted to match the manifest (we just hashed them).
    Seed,
    /// Download into the paths; existing data is re-checked first.
    Fetch,
    /// Join the swarm only to chat: no files, never interested in pieces.
    Chat,
}

/// What a torrent needs to start.
#[derive(Debug, Clone)]
pub struct Params {
    /// The manifest.
    pub meta: Arc<Metainfo>,
    /// Where each file of the manifest's layout is (see `storage::output_paths`).
    pub paths: Vec<PathBuf>,
    /// The directory that receives the output (the parent of the file, or of a directory
    /// torrent's own directory): no file may be written outside it, and no link below it
    /// is followed (`storage::check_output`).
    pub root: PathBuf,
    /// Seed or fetch.
    pub mode: Mode,
    /// Tracker announce URLs, in order.
    pub trackers: Vec<String>,
    /// Peers to connect to directly.
    pub peers: Vec<SocketAddr>,
    /// Tunables.
    pub config: Config,
}

/// A command to a peer's task.
#[derive(Debug)]
pub(crate) enum PeerCmd {
    Choke,
    Unchoke,
    Cancel(share_proto::geometry::Block),
    Chat(bytes::Bytes),
    /// Send our extension handshake again: it carries our nickname, just changed.
    Greet,
    Close(String),
}

pub(crate) use crate::peers::PeerEntry;

/// Everything mutable about a torrent, under its one lock.
#[derive(Debug)]
pub(crate) struct State {
    pub picker: Picker,
    /// The registered connections (`peers.rs`).
    pub peers: crate::peers::Peers,
    /// Pieces in the order they were verified; each peer task sends HAVEs from its
    /// position (`have_log.rs`).
    pub have_log: crate::have_log::HaveLog,
    /// Banned peers and strikes (`conduct.rs`).
    pub bans: crate::conduct::Bans,
    pub connecting: HashSet<SocketAddr>,
    /// Addresses waiting for a connection slot.
    pub candidates: Candidates,
    pub self_addrs: HashSet<SocketAddr>,
    pub optimistic: Option<PeerKey>,
    /// Pieces we have but no longer serve: a file under them became unreadable.
    pub withheld: crate::peer::Withheld,
    pub stats: Stats,
    pub chat: ChatState,
    /// Paused (`Torrent::pause`): no peers, no announces, nothing dialed or accepted.
    pub paused: bool,
    /// The check of existing data is over (or there was none to check).
    pub checked: bool,
    /// Cancelled to pause: the peers and the tracker client of this active spell stop on
    /// it. A fresh child of `Shared::cancel` on each resume.
    pub active: CancellationToken,
    /// Why a fatal error stopped it.
    pub error: Option<String>,
    /// The state last published as `Event::State`.
    pub shown: Option<TorrentState>,
}

impl State {
    /// Where the connected peers accept connections (those we know of).
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.peers.listen_addrs()
    }
}

/// What every task of a torrent shares.
pub(crate) struct Shared {
    /// Its number in the session.
    pub id: TorrentId,
    /// The session it runs in: the listener, shared limits, the event bus.
    pub session: Arc<Core>,
    pub meta: Arc<Metainfo>,
    pub geometry: Geometry,
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub config: Config,
    pub storage: Arc<dyn Storage>,
    pub state: Mutex<State>,
    pub events: broadcast::Sender<Event>,
    pub have_changed: watch::Sender<usize>,
    pub completed: Notify,
    /// Wakes the progress ticker of an idle torrent (`progress.rs`).
    pub progress_wake: Notify,
    pub cancel: CancellationToken,
    pub tasks: TaskTracker,
    pub downloaded: AtomicU64,
    pub uploaded: AtomicU64,
    pub next_key: AtomicU64,
    /// The session's hash workers.
    pub hash_permits: Arc<Semaphore>,
    pub listen_addr: SocketAddr,
    /// False in chat mode: never interested in pieces.
    pub download: bool,
    /// `torrent{id, name}`: the parent of every span of its tasks.
    pub span: tracing::Span,
    /// The session's state directory and this torrent's entry there (`persist.rs`); the
    /// mutex orders the writes.
    pub store: Option<PathBuf>,
    pub entry: Mutex<Option<crate::persist::Entry>>,
    /// Removed from the session: its entry is deleted and never written again.
    pub forgotten: std::sync::atomic::AtomicBool,
    /// Tracker announce URLs (a tracker client runs for them while active).
    pub trackers: Vec<String>,
    /// Where the files are, and the directory receiving them (for `remove` with data).
    pub paths: Vec<PathBuf>,
    pub root: PathBuf,
}

impl Shared {
    /// The torrent's lock. Never held across `.await`; a panic while holding it is a bug
    /// that already stopped the task, so a poisoned lock is taken over as is.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes an event, to this torrent's subscribers and to the session's (with the
    /// torrent's id); nobody listening is fine.
    pub fn emit(&self, event: Event) {
        if self.session.events.receiver_count() > 0 {
            self.session.emit(Some(self.id), event.clone());
        }
        let _ = self.events.send(event);
    }

    /// Publishes an event to this torrent's subscribers only (the session reported it).
    pub fn emit_local(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Takes an incoming connection the session routed here, the head of its handshake
    /// already read, if a slot allows.
    pub(crate) fn accepted(self: &Arc<Self>, stream: PeerStream, addr: SocketAddr, head: [u8; HEAD_LEN]) {
        if self.cancel.is_cancelled() {
            return;
        }
        // Counted as connecting until its handshake ends: connections that never finish
        // their handshake are bounded by the slots too (`slots.rs`).
        let admitted = {
            let mut st = self.lock();
            let admitted = self.may_accept(&st, addr.ip());
            if admitted.is_ok() {
                st.connecting.insert(addr);
            }
            admitted
        };
        if let Err(reason) = admitted {
            return self.refused(addr, reason.to_string());
        }
        let s = self.clone();
        self.spawn_peer("accepted peer", addr, async move {
            crate::peer::run(s.clone(), stream, addr, Opening::Accepted(head)).await;
            s.dial_queued();
        });
    }

    /// Spawns one of the torrent's tasks on its `TaskTracker`, inside the torrent's span and
    /// a span naming the task (`task = "tracker"`...), so that every log line says whose and
    /// which it is.
    pub fn spawn<F>(&self, task: &'static str, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        use tracing::Instrument;
        self.tasks
            .spawn(fut.instrument(tracing::info_span!(parent: &self.span, "task", task)))
    }

    /// [`Shared::spawn`] for a connection's task: its span names the peer's address.
    pub fn spawn_peer<F>(&self, task: &'static str, addr: SocketAddr, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        use tracing::Instrument;
        let span = tracing::info_span!(parent: &self.span, "peer", %addr, task);
        self.tasks.spawn(fut.instrument(span));
    }

    /// Stops the torrent after a fatal error.
    pub fn fatal(self: &Arc<Self>, error: &TorrentError) {
        tracing::error!(%error, "torrent stopped");
        self.lock().error.get_or_insert_with(|| error.chain());
        self.emit(Event::Fatal(error.chain()));
        self.cancel.cancel();
        self.publish_state();
    }

    /// Where it is in its life.
    pub fn state(&self) -> TorrentState {
        let st = self.lock();
        self.state_of(&st)
    }

    fn state_of(&self, st: &State) -> TorrentState {
        if let Some(reason) = &st.error {
            TorrentState::Error(reason.clone())
        } else if self.cancel.is_cancelled() {
            TorrentState::Stopped
        } else if st.paused {
            TorrentState::Paused
        } else if !st.checked {
            TorrentState::Checking
        } else if st.picker.is_complete() {
            TorrentState::Seeding
        } else {
            TorrentState::Downloading
        }
    }

    /// Sends `Event::State` if the state changed since it was last sent.
    pub fn publish_state(self: &Arc<Self>) {
        let changed = {
            let mut st = self.lock();
            let now = self.state_of(&st);
            (st.shown.as_ref() != Some(&now)).then(|| {
                st.shown = Some(now.clone());
                now
            })
        };
        self.progress_wake.notify_one();
        if let Some(state) = changed {
            self.emit(Event::State(state));
            self.save_soon();
        }
    }

    /// Writes this torrent's entry (`persist.rs`) as it is now: the verified pieces first,
    /// then the files' stamps (`finished`: its tasks have all ended, so nothing more is
    /// written). While its check runs only the rest is updated. Blocking; a failure is
    /// logged (the torrent goes on, and the next start checks more).
    pub fn save(&self, finished: bool) {
        let Some(dir) = &self.store else { return };
        let mut entry = self.entry.lock().unwrap_or_else(|p| p.into_inner());
        if self.forgotten.load(Ordering::Relaxed) {
            return;
        }
        let Some(entry) = entry.as_mut() else { return };
        let (have, paused, peers, checked) = {
            let st = self.lock();
            let have = st.picker.have().clone();
            let complete = st.picker.is_complete();
            ((have, complete), st.paused, st.listen_addrs(), st.checked)
        };
        entry.remember_peers(peers);
        if checked {
            let (have, complete) = have;
            let seed = entry.mode() == Some(Mode::Seed);
            entry.record(&have, paused, seed || complete || finished);
        } else {
            entry.paused = paused;
        }
        if let Err(error) = crate::persist::save(dir, self.info_hash, entry) {
            tracing::warn!(%error, "cannot record the torrent's state");
        }
    }

    /// [`Shared::save`] on the blocking pool, tracked with the torrent's tasks.
    fn save_soon(self: &Arc<Self>) {
        // A stopped torrent's last entry is written by whoever stopped it, after its tasks.
        if self.store.is_none() || self.forgotten.load(Ordering::Relaxed) || self.cancel.is_cancelled() {
            return;
        }
        let s = self.clone();
        self.tasks.spawn(async move {
            let _ = tokio::task::spawn_blocking(move || s.save(false)).await;
        });
    }

    /// Removed from the session: deletes its entry and manifest, and writes them no more.
    pub(crate) fn forget(&self) {
        let _guard = self.entry.lock().unwrap_or_else(|p| p.into_inner());
        self.forgotten.store(true, Ordering::Relaxed);
        if let Some(dir) = &self.store {
            crate::persist::delete(dir, self.info_hash);
        }
    }

    /// Pauses: closes every peer (their addresses go back to the front of the queue, to be
    /// dialed again on resume), tells the trackers we left, and accepts or dials nobody
    /// until [`Shared::resume`]. Verified pieces, the blocks of unfinished pieces, bans and
    /// chat history are kept. False if it was paused or stopped already.
    pub fn pause(self: &Arc<Self>) -> bool {
        {
            let mut st = self.lock();
            if st.paused || self.cancel.is_cancelled() {
                return false;
            }
            st.paused = true;
            st.active.cancel();
            for addr in st.listen_addrs().into_iter().rev() {
                st.candidates.push_front(addr);
            }
        }
        tracing::info!("paused");
        self.publish_state();
        true
    }

    /// Resumes a paused torrent: announces again and dials the peers it had and those
    /// queued. False if it was not paused.
    pub fn resume(self: &Arc<Self>) -> bool {
        let checked = {
            let mut st = self.lock();
            if !st.paused || self.cancel.is_cancelled() {
                return false;
            }
            st.paused = false;
            st.active = self.cancel.child_token();
            st.checked
        };
        tracing::info!("resumed");
        self.publish_state();
        // Paused during its check: the check task starts the rest when it ends.
        if checked {
            self.go_active();
        }
        true
    }

    /// Starts what runs while active: the tracker client, then the dials.
    fn go_active(self: &Arc<Self>) {
        let active = self.lock().active.clone();
        self.spawn(
            "tracker",
            crate::tracker::run(self.clone(), self.trackers.clone(), active.clone()),
        );
        // BEP 27: a private torrent finds peers through its trackers only.
        if let (Some(dht), false) = (self.session.dht.clone(), self.meta.info.private) {
            self.spawn("dht", crate::dht::run(self.clone(), dht, active));
        }
        if let (Some(lsd), false) = (&self.session.lsd, self.meta.info.private) {
            lsd.wake.notify_one();
        }
        self.dial_queued();
    }

    /// Hashes an assembled piece off the async workers and writes it if it is right.
    pub fn verify(self: &Arc<Self>, piece: Assembled) {
        let shared = self.clone();
        self.spawn("verify", async move {
            let Ok(_permit) = shared.hash_permits.acquire().await else {
                return;
            };
            let storage = shared.storage.clone();
            let expected = shared.meta.info.pieces[piece.piece.as_usize()];
            let offset = shared.geometry.piece_offset(piece.piece);
            let res = tokio::task::spawn_blocking(move || {
                let ok = share_proto::hash::sha1(piece.bytes()) == expected;
                if ok {
                    storage.write_at(offset, piece.bytes())?;
                }
                Ok::<_, TorrentError>((ok, piece))
            })
            .await;
            match res {
                Ok(Ok((ok, piece))) => {
                    let (index, from) = (piece.piece, piece.contributors);
                    shared.lock().picker.recycle(piece.data);
                    shared.piece_checked(index, ok, from);
                }
                Ok(Err(e)) => shared.fatal(&e),
                Err(e) => shared.fatal(&TorrentError::Internal(e.to_string())),
            }
        });
    }

    fn piece_checked(
        self: &Arc<Self>,
        piece: share_proto::geometry::PieceIndex,
        ok: bool,
        from: Vec<(PeerKey, PeerId)>,
    ) {
        let ids: Vec<PeerId> = from.iter().map(|(_, id)| *id).collect();
        let mut st = self.lock();
        let complete = st.picker.verified(piece, ok);
        if ok {
            let n = st.have_log.push(piece.get());
            drop(st);
            self.have_changed.send_replace(n);
            self.emit(Event::PieceVerified {
                piece: piece.get(),
                from: ids,
            });
            if complete {
                self.on_complete();
            }
            return;
        }
        let bans = st.bans.piece_failed(&ids, self.config.ban_strikes);
        drop(st);
        self.emit(Event::PieceFailed {
            piece: piece.get(),
            from: ids,
        });
        for id in bans {
            self.ban(
                id,
                format!("sent data for piece {piece} that failed its hash check"),
            );
        }
    }

    /// Bans a peer id: its connections close and it is refused from now on.
    pub fn ban(&self, peer_id: PeerId, reason: String) {
        let mut st = self.lock();
        let victims = st.peers.with_id(&peer_id);
        st.bans
            .ban(peer_id, victims.iter().filter_map(|(_, dialed, _)| *dialed));
        drop(st);
        for (addr, _, cmd) in victims {
            let _ = cmd.try_send(PeerCmd::Close(format!("banned: {reason}")));
            self.emit(Event::PeerBanned {
                addr,
                peer_id,
                reason: reason.clone(),
            });
        }
    }

    /// Every piece is verified and written. There is no fsync here: verified pieces survive
    /// a crash of the process in the page cache, the resume check re-verifies everything after
    /// a power loss, and waiting for a whole file to reach the disk cost seconds per GiB.
    fn on_complete(self: &Arc<Self>) {
        tracing::info!("download complete");
        self.emit(Event::Complete);
        self.publish_state();
        self.completed.notify_one();
    }

    /// Current counters: byte totals live, rates and peer counts as of the last progress tick.
    pub fn stats(&self) -> Stats {
        let mut stats = {
            let st = self.lock();
            Stats {
                queued_peers: st.candidates.len(),
                ..st.stats
            }
        };
        stats.downloaded = self.downloaded.load(Ordering::Relaxed);
        stats.uploaded = self.uploaded.load(Ordering::Relaxed);
        stats
    }
}

/// Piece bytes held in memory: the configured budget, but at least two pieces, so that one
/// piece is fetched while another is hashed and written. With the default 16 MiB and the
/// piece sizes `share create` picks (at most 8 MiB up to about 15 GiB) memory is the same
/// for any file size; peers share the blocks of the pieces in flight, so two keep them busy.
fn buffer_budget(config: &Config, geometry: Geometry) -> u64 {
    config.max_buffered_bytes.max(2 * u64::from(geometry.piece_len()))
}

/// A running torrent. Dropping it does not stop it; call [`Torrent::shutdown`].
pub struct Torrent {
    shared: Arc<Shared>,
    first_events: Mutex<Option<broadcast::Receiver<Event>>>,
    /// The session was made for this torrent alone (`Torrent::start`) and stops with it.
    owns_session: bool,
}

impl std::fmt::Debug for Torrent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Torrent")
            .field("info_hash", &self.shared.info_hash)
            .field("id", &self.shared.id)
            .field("listen", &self.shared.listen_addr)
            .finish()
    }
}

impl Torrent {
    /// Starts a torrent in a session of its own, listening on `config.listen`: opens the
    /// storage, binds the listener and starts every task. In fetch mode existing data is
    /// re-checked first (with `Checking` events) in the background. The session stops with
    /// the torrent.
    pub async fn start(params: Params) -> Result<Torrent, TorrentError> {
        let mut config = SessionConfig::for_torrent(&params.config);
        if params.mode == Mode::Fetch {
            // A fetch run again resumes from what it recorded: unchanged files are not hashed.
            config.state_dir = params.config.state_dir.clone();
        }
        let session = Session::start_with(config, true).await?;
        let core = session.core().clone();
        match Self::in_session(core.clone(), params, true, false).await {
            Ok(t) => Ok(t),
            Err(e) => {
                crate::session::shutdown_core(&core).await;
                Err(e)
            }
        }
    }

    /// Adds a torrent to a session (see [`Session::add`]).
    pub(crate) async fn in_session(
        core: Arc<Core>,
        params: Params,
        owns_session: bool,
        paused: bool,
    ) -> Result<Torrent, TorrentError> {
        let id = core.reserve(params.meta.info_hash)?;
        let info_hash = params.meta.info_hash;
        let started = Self::open(core.clone(), id, params, owns_session, paused).await;
        if started.is_err() {
            core.release(info_hash);
        }
        started
    }

    async fn open(
        core: Arc<Core>,
        id: TorrentId,
        params: Params,
        owns_session: bool,
        paused: bool,
    ) -> Result<Torrent, TorrentError> {
        let Params {
            meta,
            paths,
            root,
            mode,
            trackers,
            peers,
            config,
        } = params;
        let (params_paths, params_root) = (paths.clone(), root.clone());
        let geometry = meta.geometry();
        let layout = meta.layout().clone();
        let store = core.config.state_dir.clone();
        // What this session recorded of the torrent, if it is for the same files.
        let recorded = match &store {
            Some(dir) => {
                let (d, h) = (dir.clone(), meta.info_hash);
                let loaded = tokio::task::spawn_blocking(move || crate::persist::load(&d, h))
                    .await
                    .map_err(|e| TorrentError::Internal(e.to_string()))?;
                match loaded {
                    Ok(entry) => entry.and_then(|e| {
                        let resume = (e.mode() == Some(mode))
                            .then(|| e.resume(&meta, &paths, &config.select))
                            .flatten()?;
                        Some((e, resume))
                    }),
                    Err(e) => {
                        tracing::warn!(error = %e, "ignoring the recorded state");
                        None
                    }
                }
            }
            None => None,
        };
        let resume = recorded.as_ref().map(|(_, r)| r.clone());
        let existing = match mode {
            Mode::Fetch => FileStorage::has_existing_data(&layout, &paths),
            // A recorded seed whose files changed since is checked again.
            Mode::Seed => resume.as_ref().is_some_and(|r| !r.all_unchanged),
            Mode::Chat => false,
        };
        // Every file as it was when its pieces were recorded: trusted, nothing hashed.
        let trust = resume
            .as_ref()
            .filter(|r| r.all_unchanged && mode == Mode::Fetch)
            .map(|r| r.trusted.clone());
        let existing = existing && trust.is_none();
        let mut entry = store.as_ref().map(|_| {
            let (select, records) = (config.select.clone(), config.state_dir.clone());
            let mut e = crate::persist::Entry::new(mode, &root, &paths, &trackers, select, records);
            e.remember_peers(peers.iter().copied());
            e
        });
        let storage: Arc<dyn Storage> = match mode {
            Mode::Seed => Arc::new(FileStorage::open(layout, paths)?),
            Mode::Fetch => {
                // Hashes whatever existing files we did not create before trusting them, so
                // it runs on the blocking pool (`claim.rs`).
                let (m, c) = (meta.clone(), config.clone());
                let opened =
                    tokio::task::spawn_blocking(move || crate::claim::open_for_fetch(&m, paths, &root, &c))
                        .await
                        .map_err(|e| TorrentError::Internal(e.to_string()))??;
                Arc::new(opened)
            }
            Mode::Chat => Arc::new(NoStorage),
        };
        let (events, first) = broadcast::channel(core.config.event_buffer.max(16));
        let trusted_start = trust.is_some();
        let have = match (mode, trust) {
            (Mode::Seed, _) => Bitfield::full(geometry.piece_count()),
            // The picker starts with the trusted pieces: no peer ever sees it swapped.
            (Mode::Fetch, Some(trusted)) => trusted,
            (Mode::Fetch | Mode::Chat, _) => Bitfield::new(geometry.piece_count()),
        };
        let have_log = match mode {
            Mode::Fetch => crate::have_log::HaveLog::from_pieces(have.ones()),
            Mode::Seed | Mode::Chat => crate::have_log::HaveLog::default(),
        };
        let mut picker =
            Picker::new(geometry, have, buffer_budget(&config, geometry)).with_budget(core.memory.clone());
        if mode == Mode::Fetch {
            picker = picker.with_wanted(crate::selection::wanted(&meta, &config)?);
        }
        picker.start_at(rand::random::<u32>());
        let stats = Stats {
            total_bytes: picker.progress().total_bytes,
            pieces_total: picker.progress().pieces_total,
            ..Stats::default()
        };
        if let (Some(entry), Some(dir)) = (entry.as_mut(), &store) {
            if existing {
                // Until the check says what is on disk, the entry keeps what it knew (or
                // knows nothing: no stamps, so nothing is trusted after a crash mid-check).
                if let Some((old, _)) = &recorded {
                    entry.carry_from(old);
                }
                entry.paused = paused;
            } else {
                // Recorded from the start: nothing verified yet, the trusted pieces, or (a
                // seed) everything.
                entry.record(picker.have(), paused, mode == Mode::Seed || picker.is_complete());
            }
            let (d, m, t, e) = (dir.clone(), meta.clone(), trackers.clone(), entry.clone());
            tokio::task::spawn_blocking(move || {
                crate::persist::save_manifest(&d, &m, &t)?;
                crate::persist::save(&d, m.info_hash, &e)
            })
            .await
            .map_err(|e| TorrentError::Internal(e.to_string()))??;
        }
        let state = State {
            picker,
            peers: crate::peers::Peers::default(),
            have_log,
            bans: crate::conduct::Bans::default(),
            connecting: HashSet::new(),
            candidates: Candidates::new(MAX_CANDIDATES),
            self_addrs: HashSet::new(),
            optimistic: None,
            withheld: crate::peer::Withheld::new(geometry),
            stats,
            chat: ChatState::new(&config.nick),
            checked: !existing,
            paused,
            active: CancellationToken::new(),
            error: None,
            shown: None,
        };
        let span = tracing::info_span!(
            parent: None,
            "torrent",
            id = id.0,
            name = %share_proto::sanitize::sanitize(&meta.info.name)
        );
        let shared = Arc::new(Shared {
            id,
            info_hash: meta.info_hash,
            meta,
            geometry,
            peer_id: core.peer_id,
            hash_permits: core.hash_permits.clone(),
            config,
            storage,
            state: Mutex::new(state),
            events,
            have_changed: watch::channel(0).0,
            completed: Notify::new(),
            progress_wake: Notify::new(),
            cancel: core.cancel.child_token(),
            tasks: TaskTracker::new(),
            downloaded: AtomicU64::new(0),
            uploaded: AtomicU64::new(0),
            next_key: AtomicU64::new(1),
            listen_addr: core.listen_addr,
            download: mode != Mode::Chat,
            session: core.clone(),
            span,
            store: store.clone(),
            entry: Mutex::new(entry),
            forgotten: std::sync::atomic::AtomicBool::new(false),
            trackers,
            paths: params_paths,
            root: params_root,
        });
        {
            // The active spell's token hangs off the torrent's own.
            let mut st = shared.lock();
            st.active = shared.cancel.child_token();
        }
        shared.publish_state();
        core.insert(&shared);
        if !existing {
            // Nothing to check: peers may connect from the moment `start` returns.
            core.ready(&shared);
        }
        let s = shared.clone();
        // Forgets the torrent in the session once it stops, for whatever reason.
        let span = tracing::info_span!(parent: &shared.span, "task", task = "forget when stopped");
        core.tasks.spawn(tracing::Instrument::instrument(
            async move {
                s.cancel.cancelled().await;
                s.session.remove(&s);
            },
            span,
        ));
        let s = shared.clone();
        shared.spawn("start", async move {
            if trusted_start {
                // Every file is as it was when these pieces were recorded: nothing hashed.
                if let Err(e) = s.storage.check_done() {
                    return s.fatal(&e);
                }
                if s.lock().picker.is_complete() {
                    s.emit(Event::Complete);
                }
            } else if existing {
                let permit = tokio::select! {
                    p = s.session.check_permits.acquire() => p,
                    () = s.cancel.cancelled() => return,
                };
                let Ok(_permit) = permit else { return };
                let trusted = resume.as_ref().map(|r| r.trusted.clone());
                match crate::check::run(&s, trusted).await {
                    Ok(have) => s.resume_from(have),
                    Err(e) => return s.fatal(&e),
                }
            } else if s.download && s.lock().picker.is_complete() {
                s.emit(Event::Complete);
            }
            if s.cancel.is_cancelled() {
                return;
            }
            let paused = {
                let mut st = s.lock();
                st.checked = true;
                st.paused
            };
            s.publish_state();
            s.session.ready(&s);
            s.spawn("choker", crate::choker::run(s.clone()));
            s.spawn("progress", crate::progress::run(s.clone()));
            if s.store.is_some() {
                s.spawn("save", save_while_running(s.clone()));
            }
            s.add_peers_first(peers);
            if !paused {
                s.go_active();
            }
        });
        Ok(Torrent {
            shared,
            first_events: Mutex::new(Some(first)),
            owns_session,
        })
    }

    /// Its number in its session.
    pub fn id(&self) -> TorrentId {
        self.shared.id
    }

    /// Where peers can connect to us (the session's listener).
    pub fn listen_addr(&self) -> SocketAddr {
        self.shared.listen_addr
    }

    /// Where the session's DHT node listens, if it runs one (UDP).
    pub fn dht_addr(&self) -> Option<SocketAddr> {
        self.shared
            .session
            .dht
            .as_ref()
            .map(|d| SocketAddr::V4(d.local_addr()))
    }

    /// Our peer id in this swarm.
    pub fn peer_id(&self) -> PeerId {
        self.shared.peer_id
    }

    /// The swarm's info hash.
    pub fn info_hash(&self) -> InfoHash {
        self.shared.info_hash
    }

    /// The events of this torrent. The first call gets every event since `start`; later
    /// calls get events from the moment they subscribe.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        let mut first = self.first_events.lock().unwrap_or_else(|p| p.into_inner());
        first.take().unwrap_or_else(|| self.shared.events.subscribe())
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Whether every wanted piece is verified (every piece, unless `Config::select` chose
    /// some files).
    pub fn is_complete(&self) -> bool {
        self.shared.lock().picker.is_complete()
    }

    /// Connects to more peers, ahead of any the trackers gave that still wait for a slot.
    pub fn add_peers(&self, addrs: impl IntoIterator<Item = SocketAddr>) {
        self.shared.add_peers_first(addrs);
    }

    /// Sends a chat message to the room.
    pub fn say(&self, text: &str) -> Result<(), SendError> {
        self.shared.chat_send(None, text, None)
    }

    /// Sends a chat message to the room as written at `time_ms` (unix milliseconds): the
    /// same line sent to several swarms carries one time, and a peer in several of them
    /// shows it once.
    pub fn say_at(&self, text: &str, time_ms: u64) -> Result<(), SendError> {
        self.shared.chat_send(None, text, Some(time_ms))
    }

    /// Sends a direct chat message to the connected peer called `nick`.
    pub fn say_to(&self, nick: &str, text: &str) -> Result<(), SendError> {
        self.shared.chat_send(Some(nick), text, None)
    }

    /// Our chat nickname.
    pub fn nick(&self) -> String {
        self.shared.lock().chat.nick.clone()
    }

    /// Changes our nickname (cut to 32 bytes of printable text); returns the one in use.
    /// Connected peers learn it at once from a fresh extension handshake (BEP 10 allows
    /// sending it again), so their `/peers` and `/msg` follow; the rest from our messages.
    pub fn set_nick(&self, nick: &str) -> String {
        let clean = crate::chat::clean_nick(nick);
        let cmds: Vec<_> = {
            let mut st = self.shared.lock();
            st.chat.nick = clean.clone();
            st.peers.cmds(false)
        };
        for cmd in cmds {
            let _ = cmd.try_send(PeerCmd::Greet);
        }
        clean
    }

    /// The connected peers: address, id, nickname, client and progress.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.shared.peer_list()
    }

    /// Chat payloads dropped as malformed, oversize or misdirected.
    pub fn chat_dropped(&self) -> u64 {
        self.shared.lock().chat.dropped
    }

    /// A token cancelled when the torrent stops (after a fatal error or `shutdown`).
    pub fn stopped(&self) -> CancellationToken {
        self.shared.cancel.clone()
    }

    /// Where it is in its life.
    pub fn state(&self) -> TorrentState {
        self.shared.state()
    }

    /// Pauses it (see [`TorrentState::Paused`]); false if it was paused or stopped already.
    pub fn pause(&self) -> bool {
        self.shared.pause()
    }

    /// Resumes it after [`Torrent::pause`]; false if it was not paused.
    pub fn resume(&self) -> bool {
        self.shared.resume()
    }

    /// Stops every task: tells the trackers we leave, closes the peers, waits for it all;
    /// the torrent leaves its session (and a session of its own stops).
    pub async fn shutdown(self) {
        self.shared.stop().await;
        if self.owns_session {
            crate::session::shutdown_core(&self.shared.session).await;
        }
    }
}

impl Shared {
    /// Stops it for good and waits (at most 5 s) for its tasks; it leaves the session.
    pub(crate) async fn stop(self: &Arc<Self>) {
        self.cancel.cancel();
        self.session.remove(self);
        self.tasks.close();
        let finished = tokio::time::timeout(Duration::from_secs(5), self.tasks.wait())
            .await
            .is_ok();
        self.publish_state();
        let s = self.clone();
        let _ = tokio::task::spawn_blocking(move || s.save(finished)).await;
    }

    /// After [`Shared::stop`]: deletes what it downloaded or served (`claim::delete_data`).
    pub(crate) fn delete_data(&self) -> Result<usize, TorrentError> {
        crate::claim::delete_data(&self.meta, &self.paths, &self.root, &self.config)
    }

    fn resume_from(self: &Arc<Self>, have: Bitfield) {
        let mut st = self.lock();
        st.picker = Picker::new(
            self.geometry,
            have.clone(),
            buffer_budget(&self.config, self.geometry),
        )
        .with_budget(self.session.memory.clone())
        .with_wanted(st.picker.wanted().clone());
        st.picker.start_at(rand::random::<u32>());
        st.have_log = crate::have_log::HaveLog::from_pieces(have.ones());
        let n = st.have_log.len();
        let complete = st.picker.is_complete();
        drop(st);
        self.have_changed.send_replace(n);
        if complete {
            self.emit(Event::Complete);
        }
    }
}

/// How often the entry is written while pieces arrive: a crash loses at most this much of
/// the record (those pieces are checked again, not lost).
const SAVE_EVERY: Duration = Duration::from_secs(5);

/// Writes the entry every [`SAVE_EVERY`] while the verified pieces change.
async fn save_while_running(s: Arc<Shared>) {
    let mut have = s.have_changed.subscribe();
    let mut tick = tokio::time::interval(SAVE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut saved = *have.borrow_and_update();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = s.cancel.cancelled() => return,
        }
        let now = *have.borrow_and_update();
        if now != saved {
            saved = now;
            let t = s.clone();
            let _ = tokio::task::spawn_blocking(move || t.save(false)).await;
        }
    }
}
