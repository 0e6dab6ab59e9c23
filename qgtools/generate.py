"""Offline generator of quark and gluon jets described by N-subjettiness.

Regenerates a sample in the format of EnergyFlow's quark/gluon N-subjettiness
dataset: Pythia 8, pp at 14 TeV, Z(->nu nu) + jet, anti-kT R = 0.4 jets with
500 < pT < 550 GeV and |y| < 1.7, and 45 features tau_N^beta for N = 1..15 and
beta in (0.5, 1, 2), in the order tau_1^0.5, tau_1^1, tau_1^2, tau_2^0.5, ...,
tau_15^2 (N-major). Label 1 = quark, 0 = gluon.

Usage::

    python -m qgtools.generate --jets 50000 --seed 1 --workers 2 --out qg.npz

Needs the ``generate`` extra (``pip install -e '.[generate]'``: pythia8mc and
fastjet).

Choices the public description leaves open, made here:

* Pythia 8 default tune (Monash 2013), default PDF, MPI, ISR/FSR,
  hadronization and particle decays all on (Pythia defaults; e.g. pi0 and
  K_S are decayed, so photons and pions enter the jets).
* Gluon jets: ``WeakBosonAndParton:qqbar2gmZg``; quark jets:
  ``WeakBosonAndParton:qg2gmZq``, each in its own Pythia instance. The quark
  flavour is that of the outgoing hard-process quark (the status-23 parton of
  the process record, which for q g -> Z q equals the incoming quark's);
  events with c or b are vetoed at process level (a UserHooks veto, before
  showering, so no time is spent on them). Gluon events are all kept.
* Pure Z (``WeakZ0:gmZmode = 2``) decaying to nu nubar only; the jet inputs
  are all final-state particles except neutrinos (|id| 12, 14, 16).
* Hard-process window ``PhaseSpace:pTHatMin/pTHatMax`` = PTHAT_MIN/PTHAT_MAX
  = 250/1000 GeV. Accepted jets come from a wide pTHat range: ISR recoil
  and hard wide-angle emissions merging into the jet bring jets from pTHat
  down to ~275 GeV into the 500-550 GeV window (mostly quark jets: about 2%
  of them come from pTHat < 300 GeV, 6% from < 350 GeV; 0.4% of gluon jets
  from < 350 GeV), and out-of-cone radiation brings jets from pTHat up to
  ~870 GeV down into it. None of ~1500 accepted jets per class generated
  with wider windows fell outside 250-1000 GeV (measured with this module's
  settings on samples generated with 150-1500 GeV windows).
* Speed-ups that do not change which jets are accepted (checked on a few
  thousand accepted jets; they only skip events that cannot pass):
  (1) quark class: process-level veto of c/b events (above);
  (2) at parton-shower scale VETO_SCALE = 8 GeV of the interleaved
  ISR/FSR/MPI evolution (UserHooks doVetoPT), the event is abandoned unless
  the partons so far (all final partons and photons, not the Z or
  neutrinos) have an anti-kT R = 1.0 jet with pT > 450 GeV and |y| < 2.2.
  An accepted R = 0.4 jet has pT > 500 GeV and |y| < 1.7, and its R = 1.0
  parton-level proxy was never found below 496 GeV nor beyond |y| = 1.72;
  later emissions are softer than 8 GeV. Most events are rejected there, at
  a small fraction of the cost of a full event;
  (3) after hadronization, Pythia's SlowJet (the same anti-kT R = 0.4, in
  the fjcore bundled with Pythia, run in C++ on the same particles) must
  find a hardest jet with 480 < pT < 570 GeV and |y| < 1.9 before the event
  is handed to FastJet; accepted jets are always FastJet's;
  (4) ``Print:quiet``, ``Next:numberCount = 0``.
* Jets: FastJet anti-kT, R = 0.4, E-scheme, on all final-state particles but
  neutrinos; only the hardest jet of the event is considered, and the event
  is rejected if it fails 500 < pT < 550 GeV and |y| < 1.7 (y = rapidity).
* N-subjettiness: axes are the exclusive-kT subjets (kt_algorithm,
  R = JetDefinition.max_allowable_R = 1000, E-scheme, as in fastjet-contrib's
  ExclusiveJetAxes) of the jet's constituents, exclusive_jets(N), no axis
  optimisation; distances dR = sqrt(dy^2 + dphi^2) in rapidity and azimuth
  (wrapped to [-pi, pi]); tau_N^beta = sum_i pT_i min_k dR_ik^beta / pT_jet
  with pT_jet the jet's (E-scheme) pT, no characteristic radius R0. A jet
  with N or fewer constituents has tau_N = 0 exactly.
* Seeding: the work is split into chunks of CHUNK_JETS jets of one class;
  chunk c of class k runs a fresh Pythia with ``Random:seed`` derived from
  (seed, k, c) by numpy's SeedSequence (range 1..900000000). Results are
  assembled in chunk order, so they do not depend on the worker count, then
  shuffled with ``np.random.default_rng(seed)``. Classes are exactly
  balanced, so the number of jets must be even.
* Output: float32 features, int8 labels (an .npz also holding ``meta``, a
  JSON string with all settings and versions).
"""
from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import sys
import time
from typing import Any, Iterator

import numpy as np

CHUNK_JETS = 250
ECM = 14000.0
PTHAT_MIN = 250.0  # GeV; see PTHAT_NOTE
PTHAT_MAX = 1000.0  # GeV
PTHAT_NOTE = "filled in below"
JET_R = 0.4
JET_PT_MIN, JET_PT_MAX = 500.0, 550.0
JET_ABS_Y_MAX = 1.7
# Early veto (speed only): when the parton shower reaches VETO_SCALE, the
# event goes on only if the partons so far have an anti-kT R = PROXY_R jet with
# pT > PROXY_PT_MIN and |y| < PROXY_ABS_Y_MAX (wide margins, see the docstring).
VETO_SCALE = 8.0  # GeV
PROXY_R, PROXY_PT_MIN, PROXY_ABS_Y_MAX = 1.0, 450.0, 2.2
# Loose SlowJet pre-selection: only a speed-up, it must keep every event that
# FastJet accepts (the two run the same algorithm on the same particles).
PRESEL_PT_MIN, PRESEL_PT_MAX, PRESEL_ABS_Y_MAX = 480.0, 570.0, 1.9
N_MAX = 15
BETAS = (0.5, 1.0, 2.0)
NEUTRINOS = (12, 14, 16)
LIGHT_QUARKS = (1, 2, 3)
MAX_SEED = 900_000_000
QUARK, GLUON = 1, 0

COMMON_SETTINGS = (
    f"Beams:eCM = {ECM:g}",
    "WeakZ0:gmZmode = 2",
    "23:onMode = off",
    "23:onIfAny = 12 14 16",
    f"PhaseSpace:pTHatMin = {PTHAT_MIN:g}",
    f"PhaseSpace:pTHatMax = {PTHAT_MAX:g}",
    "Print:quiet = on",
    "Next:numberCount = 0",
)
PROCESS_SETTINGS = {
    QUARK: ("WeakBosonAndParton:qg2gmZq = on",),
    GLUON: ("WeakBosonAndParton:qqbar2gmZg = on",),
}
FEATURES = tuple(f"tau_{n}^{b:g}" for n in range(1, N_MAX + 1) for b in BETAS)

_INSTALL_HINT = "pip install -e '.[generate]'"


def _import_backends() -> tuple[Any, Any]:
    """Import pythia8mc and fastjet, with an install hint if missing."""
    try:
        import fastjet
        import pythia8mc
    except ImportError as exc:
        raise ImportError(
            f"qgtools.generate needs pythia8mc and fastjet ({exc}); "
            f"install them with: {_INSTALL_HINT}"
        ) from exc
    return pythia8mc, fastjet


def chunk_seeds(seed: int, label: int, n_chunks: int) -> list[int]:
    """Pythia seeds (1..900000000) for chunks 0..n_chunks-1 of one class."""
    return [
        int(np.random.SeedSequence([seed, label, c]).generate_state(1)[0]) % MAX_SEED + 1
        for c in range(n_chunks)
    ]


def nsubjettiness(
    y: np.ndarray, phi: np.ndarray, pt: np.ndarray, axes: list[np.ndarray], pt_jet: float
) -> np.ndarray:
    """tau_N^beta for N = 1..len(axes), N-major, beta in BETAS.

    ``axes[N-1]`` is an (N, 2) array of axis (y, phi); constituents are given
    by the arrays y, phi, pt. Missing N (more axes than particles) give 0.
    """
    taus = np.zeros((N_MAX, len(BETAS)))
    for n, ax in enumerate(axes):
        dphi = (phi[:, None] - ax[None, :, 1] + np.pi) % (2 * np.pi) - np.pi
        dr2 = np.min((y[:, None] - ax[None, :, 0]) ** 2 + dphi**2, axis=1)
        taus[n] = [np.dot(pt, dr2 ** (b / 2)) for b in BETAS]
    return (taus / pt_jet).reshape(-1)


def _jet_features(jet: Any, fastjet: Any, kt_def: Any) -> np.ndarray:
    """The 45 N-subjettiness features of one FastJet jet."""
    cons = list(jet.constituents())
    kin = np.array([(c.rap(), c.phi(), c.pt()) for c in cons])
    cs = fastjet.ClusterSequence(cons, kt_def)
    axes = []
    for n in range(1, min(N_MAX, len(cons) - 1) + 1):
        axes.append(np.array([(a.rap(), a.phi()) for a in cs.exclusive_jets(n)]))
    return nsubjettiness(kin[:, 0], kin[:, 1], kin[:, 2], axes, jet.pt())


def _make_pythia(pythia8mc: Any, fastjet: Any, label: int, pythia_seed: int) -> tuple[Any, Any]:
    """An initialised Pythia for one class, and its UserHooks (keep it alive)."""

    class Vetoes(pythia8mc.UserHooks):
        """Early vetoes of events that cannot give an accepted jet (speed only).

        Process level (quark class only): outgoing quark not u, d, s.
        At parton-shower scale VETO_SCALE: hardest anti-kT jet of the partons
        so far outside the loose PROXY_* window.
        """

        def __init__(self, quark: bool) -> None:
            super().__init__()
            self.quark = quark
            self.proxy_pt = 0.0  # pT of the last event's hardest central proxy jet
            self.jet_def = fastjet.JetDefinition(fastjet.antikt_algorithm, PROXY_R, fastjet.E_scheme)

        def canVetoProcessLevel(self) -> bool:
            return self.quark

        def doVetoProcessLevel(self, process: Any) -> bool:
            for i in range(process.size()):
                p = process[i]
                if p.status() == 23 and p.idAbs() != 23:
                    return p.idAbs() not in LIGHT_QUARKS
            return True

        def canVetoPT(self) -> bool:
            return True

        def scaleVetoPT(self) -> float:
            return VETO_SCALE

        def doVetoPT(self, iPos: int, event: Any) -> bool:
            if iPos >= 5:  # resonance (Z) decays: nothing to decide
                return False
            partons = []
            for i in range(event.size()):
                p = event[i]
                if p.isFinal() and p.idAbs() not in NEUTRINOS and p.id() != 23:
                    partons.append(fastjet.PseudoJet(p.px(), p.py(), p.pz(), p.e()))
            jets = fastjet.ClusterSequence(partons, self.jet_def).inclusive_jets(PROXY_PT_MIN)
            self.proxy_pt = max((j.pt() for j in jets if abs(j.rap()) < PROXY_ABS_Y_MAX), default=0.0)
            return self.proxy_pt == 0.0

    pythia = pythia8mc.Pythia("", False)
    for s in settings(label, pythia_seed):
        if not pythia.readString(s):
            raise RuntimeError(f"Pythia rejected setting {s!r}")
    hooks = Vetoes(label == QUARK)
    pythia.setUserHooksPtr(hooks)
    if not pythia.init():
        raise RuntimeError("Pythia initialisation failed")
    return pythia, hooks


def settings(label: int, pythia_seed: int) -> list[str]:
    """All Pythia settings strings for one chunk of class ``label``."""
    return [
        *COMMON_SETTINGS,
        *PROCESS_SETTINGS[label],
        "Random:setSeed = on",
        f"Random:seed = {pythia_seed}",
    ]


def accepted_jets(label: int, pythia_seed: int) -> Iterator[tuple[np.ndarray, Any, Any]]:
    """Endless stream of accepted jets of one class from one Pythia run.

    Yields (features, jet, pythia): the 45 features (float64), the FastJet
    jet and the Pythia instance (its event and info belong to the jet).
    """
    pythia8mc, fastjet = _import_backends()
    pythia, hooks = _make_pythia(pythia8mc, fastjet, label, pythia_seed)
    anti_kt = fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R, fastjet.E_scheme)
    kt_def = fastjet.JetDefinition(
        fastjet.kt_algorithm, fastjet.JetDefinition.max_allowable_R, fastjet.E_scheme
    )
    # power -1 = anti-kT; select 2 = final-state particles except invisible
    # ones (neutrinos); massSet 2 = real masses (E-scheme); fjcore; y-phi R.
    slowjet = pythia8mc.SlowJet(-1, JET_R, 0.5 * PRESEL_PT_MIN, 1e9, 2, 2, None, True, True)
    n_fail = 0
    while True:
        if not pythia.next():
            n_fail += 1
            if n_fail > 1000:
                raise RuntimeError("Pythia failed to generate 1000 events")
            continue
        event = pythia.event
        slowjet.analyze(event)
        if not (
            slowjet.sizeJet() > 0
            and PRESEL_PT_MIN < slowjet.pT(0) < PRESEL_PT_MAX
            and abs(slowjet.y(0)) < PRESEL_ABS_Y_MAX
        ):
            continue
        particles = [
            fastjet.PseudoJet(p.px(), p.py(), p.pz(), p.e())
            for p in event
            if p.isFinal() and p.idAbs() not in NEUTRINOS
        ]
        cs = fastjet.ClusterSequence(particles, anti_kt)
        jet = fastjet.sorted_by_pt(cs.inclusive_jets())[0]
        if JET_PT_MIN < jet.pt() < JET_PT_MAX and abs(jet.rap()) < JET_ABS_Y_MAX:
            yield _jet_features(jet, fastjet, kt_def), jet, pythia
        _ = hooks  # keep the hooks alive as long as Pythia runs


def generate_chunk(label: int, pythia_seed: int, n_jets: int) -> np.ndarray:
    """Generate ``n_jets`` accepted jets of one class; returns (n_jets, 45) float32."""
    out = np.empty((n_jets, len(FEATURES)), dtype=np.float32)
    for i, (features, _, _) in zip(range(n_jets), accepted_jets(label, pythia_seed)):
        out[i] = features
    return out


def _run_job(job: tuple[int, int, int]) -> np.ndarray:
    return generate_chunk(*job)


def generate(
    n_jets: int, seed: int = 0, workers: int = 1, progress: bool = False
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Generate ``n_jets`` jets, half quark half gluon, shuffled.

    Returns X (n_jets, 45) float32, y (n_jets,) int8 (1 = quark) and a dict of
    metadata. The result depends on ``n_jets`` and ``seed`` only.
    """
    if n_jets <= 0 or n_jets % 2:
        raise ValueError(f"n_jets must be a positive even number (balanced classes), got {n_jets}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    _import_backends()
    n_class = n_jets // 2
    n_chunks = -(-n_class // CHUNK_JETS)
    sizes = [min(CHUNK_JETS, n_class - c * CHUNK_JETS) for c in range(n_chunks)]
    seeds = {k: chunk_seeds(seed, k, n_chunks) for k in (QUARK, GLUON)}
    jobs = [(k, seeds[k][c], sizes[c]) for c in range(n_chunks) for k in (QUARK, GLUON)]

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_jets, unit="jet", file=sys.stderr, smoothing=0.1)
    start = time.time()
    results: list[np.ndarray] = []
    if workers == 1:
        chunks = map(_run_job, jobs)
    else:
        pool = multiprocessing.get_context("spawn").Pool(min(workers, len(jobs)))
        chunks = pool.imap(_run_job, jobs)
    try:
        for chunk in chunks:
            results.append(chunk)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if workers > 1:
            pool.terminate()
        if bar is not None:
            bar.close()
    wall = time.time() - start

    X = np.concatenate(results)
    y = np.array([k for k, _, n in jobs for _ in range(n)], dtype=np.int8)
    perm = np.random.default_rng(seed).permutation(n_jets)
    meta = _metadata(n_jets, seed, workers, wall)
    return X[perm], y[perm], meta


def _metadata(n_jets: int, seed: int, workers: int, wall: float) -> dict:
    """Settings and versions to store with a generated sample."""
    from importlib.metadata import version

    return {
        "generator": "qgtools.generate",
        "jets": n_jets,
        "seed": seed,
        "workers": workers,
        "wall_seconds": round(wall, 1),
        "labels": {"1": "quark (u, d, s)", "0": "gluon"},
        "features": list(FEATURES),
        "pythia_settings_common": list(COMMON_SETTINGS),
        "pythia_settings_quark": list(PROCESS_SETTINGS[QUARK]),
        "pythia_settings_gluon": list(PROCESS_SETTINGS[GLUON]),
        "pythia_seeding": "Random:setSeed = on; Random:seed = "
        "SeedSequence([seed, label, chunk]).generate_state(1)[0] % 900000000 + 1",
        "quark_selection": "process-level veto unless |id| of outgoing hard quark in (1, 2, 3)",
        "chunk_jets": CHUNK_JETS,
        "pthat_window": [PTHAT_MIN, PTHAT_MAX],
        "pthat_note": PTHAT_NOTE,
        "jet_definition": f"anti-kT R={JET_R} E-scheme (FastJet), hardest jet only",
        "jet_cuts": {"pt_min": JET_PT_MIN, "pt_max": JET_PT_MAX, "abs_y_max": JET_ABS_Y_MAX},
        "jet_inputs": "final-state particles except |id| in (12, 14, 16)",
        "nsubjettiness": "tau_N^beta = sum_i pT_i min_k dR_ik^beta / pT_jet, axes = exclusive "
        "kT subjets (R=1000, E-scheme), dR in (y, phi); tau_N = 0 if n_constituents <= N",
        "versions": {pkg: version(pkg) for pkg in ("pythia8mc", "fastjet", "numpy")},
        "command": " ".join(sys.argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def save(path: str, X: np.ndarray, y: np.ndarray, meta: dict) -> None:
    """Write X, y and meta (a JSON string) to a compressed .npz file."""
    np.savez_compressed(path, X=X, y=y, meta=np.array(json.dumps(meta)))


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m qgtools.generate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--jets", type=int, required=True, help="number of jets (even)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--out", required=True, help="output .npz file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    X, y, meta = generate(args.jets, args.seed, args.workers, progress=not args.no_progress)
    if argv is not None:
        meta["command"] = "python -m qgtools.generate " + " ".join(argv)
    save(args.out, X, y, meta)
    print(f"wrote {args.out}: {len(y)} jets in {meta['wall_seconds']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
