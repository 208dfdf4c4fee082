//! Crashes and I/O failures injected at every step of every transition: start-up must then load exactly
//! the acknowledged writes (or refuse with an error), and the directory must stay usable.

use super::*;

/// Runs `transition` on a fresh `setup()` once to count its steps, then once per step with a crash injected
/// there; after each crash, start-up must load a state `check` accepts (given the step), a full restart
/// must succeed and a further rewrite cycle must keep every write.
fn crash_every_step(
    tag: &str,
    setup: impl Fn(&AofPaths) -> Server,
    transition: impl Fn(&mut Server) -> Result<(), DirError>,
    check: impl Fn(u32, &[String], &Server),
) {
    let t = temp_dir(tag);
    let p = paths_of(&t);
    let mut s = setup(&p);
    let before = s.dir.steps_taken();
    transition(&mut s).unwrap();
    let steps = s.dir.steps_taken() - before;
    assert!(steps > 0, "{tag}: no steps");
    check(steps + 1, &startup_load(&p).unwrap(), &s);
    drop(s);
    for step in 1..=steps {
        let t = temp_dir(tag);
        let p = paths_of(&t);
        let mut s = setup(&p);
        s.dir.inject_fault(step, Fault::Crash);
        let r = transition(&mut s);
        assert!(matches!(r, Err(DirError::InjectedCrash { .. })), "{tag} step {step}: {r:?}");
        let loaded = startup_load(&p).unwrap_or_else(|e| panic!("{tag} step {step}: start-up refused: {e}"));
        check(step, &loaded, &s);
        let acked = loaded.clone();
        drop(s);
        let mut again = Server::start(&p, AofOptions::default());
        assert_eq!(again.acked, acked, "{tag} step {step}: restart");
        again.write(1);
        again.rewrite(1);
        again.write(1);
        assert_eq!(startup_load(&p).unwrap(), again.acked, "{tag} step {step}: after a rewrite");
    }
}

fn running(p: &AofPaths) -> Server {
    let mut s = Server::start(p, AofOptions::default());
    s.write(2);
    s
}

#[test]
fn crash_during_fresh_start() {
    crash_every_step(
        "crash-fresh",
        |p| Server { dir: AofDir::open(p.clone(), AofOptions::default()).unwrap(), incr: None, acked: vec![], next: 1 },
        |s| s.dir.open_on_start(BaseFormat::Rdb, |f| f.write_all(b"")).map(drop),
        |step, loaded, _| assert!(loaded.is_empty(), "step {step}"),
    );
}

#[test]
fn crash_during_legacy_upgrade_and_first_open() {
    crash_every_step(
        "crash-upgrade",
        |p| {
            fs::write(p.legacy_path(), "w1\nw2\n").unwrap();
            Server { dir: AofDir::open(p.clone(), AofOptions::default()).unwrap(), incr: None, acked: vec![], next: 3 }
        },
        |s| {
            s.dir.upgrade_legacy()?;
            s.dir.load_plan()?;
            s.dir.open_on_start(BaseFormat::Rdb, |_| panic!("not a fresh start")).map(drop)
        },
        |step, loaded, _| assert_eq!(loaded, ["w1", "w2"], "step {step}"),
    );
}

#[test]
fn crash_during_rotation() {
    crash_every_step(
        "crash-rotate",
        running,
        |s| s.start_rewrite().map(drop),
        |step, loaded, s| assert_eq!(loaded, s.acked, "step {step}"),
    );
}

#[test]
fn crash_during_rewrite_done() {
    crash_every_step(
        "crash-done",
        |p| {
            let mut s = running(p);
            s.start_rewrite().unwrap();
            s.write(2);
            s
        },
        |s| s.dir.rewrite_done().map(drop),
        |step, loaded, s| assert_eq!(loaded, s.acked, "step {step}"),
    );
}

#[test]
fn crash_during_rewrite_done_after_failures() {
    crash_every_step(
        "crash-done-fails",
        |p| {
            let mut s = running(p);
            s.failed_rewrite(1);
            s.failed_rewrite(1);
            s.start_rewrite().unwrap();
            s.write(1);
            s
        },
        |s| s.dir.rewrite_done().map(drop),
        |step, loaded, s| assert_eq!(loaded, s.acked, "step {step}"),
    );
}

#[test]
fn crash_during_rewrite_done_with_aof_off() {
    crash_every_step(
        "crash-done-off",
        |p| {
            let mut s = running(p);
            s.dir.disable();
            s.incr = None;
            s.start_rewrite().unwrap();
            s
        },
        |s| s.dir.rewrite_done().map(drop),
        |step, loaded, s| assert_eq!(loaded, s.acked, "step {step}"),
    );
}

#[test]
fn crash_during_first_rewrite_after_enable() {
    // Writes made while waiting for the first rewrite are not durable until it is done: start-up finds
    // either the state from before (nothing here) or everything.
    crash_every_step(
        "crash-enable",
        |p| {
            let mut s = Server {
                dir: AofDir::open(p.clone(), AofOptions::default()).unwrap(),
                incr: None,
                acked: vec![],
                next: 1,
            };
            s.write(2); // AOF off
            s.dir.enable().unwrap();
            s.start_rewrite().unwrap();
            s.write(2); // into the temp incr
            s
        },
        |s| s.dir.rewrite_done().map(drop),
        |step, loaded, s| assert!(loaded.is_empty() || loaded == s.acked, "step {step}: {loaded:?}"),
    );
}

#[test]
fn crash_during_reenable_keeps_the_old_state_or_the_new() {
    crash_every_step(
        "crash-reenable",
        |p| {
            let mut s = running(p);
            s.dir.disable();
            s.incr = None;
            s.write(1); // not logged
            s.dir.enable().unwrap();
            s.start_rewrite().unwrap();
            s.write(1);
            s
        },
        |s| s.dir.rewrite_done().map(drop),
        |step, loaded, s| assert!(loaded == &s.acked[..2] || loaded == s.acked, "step {step}: {loaded:?}"),
    );
}

#[test]
fn crash_during_history_removal() {
    crash_every_step(
        "crash-gc",
        |p| {
            let mut s = Server::start(p, no_gc());
            s.write(1);
            s.rewrite(1);
            s.rewrite(1);
            s
        },
        |s| s.dir.set_disable_auto_gc(false).map(drop),
        |step, loaded, s| assert_eq!(loaded, s.acked, "step {step}"),
    );
}

/// Like [`crash_every_step`], but each step fails with an I/O error instead: the transition reports it, the
/// server goes on (unless poisoned) and writes more, and start-up then loads every write. A server poisoned
/// while still waiting for its first rewrite after `appendonly yes` may lose the writes made since then
/// (they were never durable), but not the first `durable_before_enable` ones.
fn fail_every_step(
    tag: &str,
    setup: impl Fn(&AofPaths) -> Server,
    transition: impl Fn(&mut Server) -> Result<(), DirError>,
    durable_before_enable: usize,
) {
    let t = temp_dir(tag);
    let p = paths_of(&t);
    let mut s = setup(&p);
    let before = s.dir.steps_taken();
    transition(&mut s).unwrap();
    let steps = s.dir.steps_taken() - before;
    drop(s);
    let mut poisoned = 0;
    for step in 1..=steps {
        let t = temp_dir(tag);
        let p = paths_of(&t);
        let mut s = setup(&p);
        s.dir.inject_fault(step, Fault::Fail);
        let r = transition(&mut s);
        if s.dir.is_poisoned() {
            assert!(matches!(r, Err(DirError::Io { op: IoOp::SyncDir, .. })), "{tag} step {step}: {r:?}");
            assert!(matches!(s.dir.start_rewrite(9, BaseFormat::Rdb), Err(DirError::Poisoned { .. })));
        } else if r.is_err() {
            s.write(1);
            if s.dir.state() == AofState::WaitRewrite {
                // Nothing is durable before the first successful rewrite; the server retries it.
                s.rewrite(1);
            }
        }
        let loaded = startup_load(&p).unwrap_or_else(|e| panic!("{tag} step {step}: start-up refused: {e}"));
        if s.dir.is_poisoned() && s.dir.state() == AofState::WaitRewrite {
            poisoned += 1;
            // Before the manifest was replaced: the old state; after: everything.
            let old = &s.acked[..durable_before_enable];
            assert!(loaded == old || loaded == s.acked, "{tag} step {step} ({r:?}): {loaded:?}");
        } else {
            assert_eq!(loaded, s.acked, "{tag} step {step} ({r:?})");
        }
        assert!(!p.rewrite_temp_path(4242).exists() || s.dir.rewrite_in_progress().is_some(), "{tag} step {step}");
        if !s.dir.is_poisoned() {
            s.rewrite(1);
            assert_eq!(startup_load(&p).unwrap(), s.acked, "{tag} step {step}: next rewrite");
        }
    }
    assert!(poisoned == 0 || durable_before_enable < usize::MAX, "{tag}");
}

#[test]
fn failures_during_rotation() {
    fail_every_step("fail-rotate", running, |s| s.start_rewrite().map(drop), usize::MAX);
}

#[test]
fn failures_during_rewrite_done() {
    fail_every_step(
        "fail-done",
        |p| {
            let mut s = running(p);
            s.start_rewrite().unwrap();
            s.write(1);
            s
        },
        |s| s.dir.rewrite_done().and_then(|done| done.history.map(drop)),
        usize::MAX,
    );
}

#[test]
fn failures_during_first_rewrite_after_enable() {
    fail_every_step(
        "fail-enable",
        |p| {
            let mut s = running(p);
            s.dir.disable();
            s.incr = None;
            s.dir.enable().unwrap();
            s.start_rewrite().unwrap();
            s.write(1);
            s
        },
        |s| s.dir.rewrite_done().and_then(|done| done.history.map(drop)),
        2,
    );
}

#[test]
fn failures_during_fresh_start_and_upgrade() {
    for legacy in [false, true] {
        let t = temp_dir("fail-start");
        let p = paths_of(&t);
        let count = {
            if legacy {
                fs::write(p.legacy_path(), "w1\n").unwrap();
            }
            let mut d = AofDir::open(p.clone(), AofOptions::default()).unwrap();
            d.upgrade_legacy().unwrap();
            d.open_on_start(BaseFormat::Rdb, empty_base).unwrap();
            d.steps_taken()
        };
        for step in 1..=count {
            let t = temp_dir("fail-start");
            let p = paths_of(&t);
            if legacy {
                fs::write(p.legacy_path(), "w1\n").unwrap();
            }
            let mut d = AofDir::open(p.clone(), AofOptions::default()).unwrap();
            d.inject_fault(step, Fault::Fail);
            let r = d.upgrade_legacy().and_then(|_| d.open_on_start(BaseFormat::Rdb, empty_base).map(drop));
            assert!(r.is_err(), "step {step}");
            // The server exits; the next start-up loads what there was.
            let want: Vec<String> = if legacy { vec!["w1".into()] } else { vec![] };
            assert_eq!(Server::start(&p, AofOptions::default()).acked, want, "legacy {legacy} step {step}");
        }
    }
}

#[test]
fn a_base_writer_error_leaves_no_temp_file() {
    let t = temp_dir("basefail");
    let p = paths_of(&t);
    let mut d = AofDir::open(p.clone(), AofOptions::default()).unwrap();
    let e = d.open_on_start(BaseFormat::Rdb, |_| Err(io::Error::other("disk full"))).unwrap_err();
    assert!(matches!(e, DirError::Io { op: IoOp::WriteBase, .. }), "{e}");
    assert!(e.to_string().contains("disk full"));
    assert!(fs::read_dir(&t.0).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with("temp-")));
}
