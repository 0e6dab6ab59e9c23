"""Offline generator of quark and gluon jets described by N-subjettiness.

Regenerates a sample in the format of EnergyFlow's quark/gluon N-subjettiness
dataset: Pythia 8, pp at 14 TeV, Z(->nu nu) + jet, anti-kT R = 0.4 jets with
500 < pT < 550 GeV and |y| < 1.7, and 45 features tau_N^beta for N = 1..15 and
beta in (0.5, 1, 2), in the order of ``qgtools.data.FEATURE_NAMES``:
tau_1^(0.5), tau_1^(1), tau_1^(2), tau_2^(0.5), ..., tau_15^(2) (N-major).
Label 1 = quark, 0 = gluon.

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
* Hard-process window: ``PhaseSpace:pTHatMin = 250`` GeV (PTHAT_MIN), no
  upper limit (``pTHatMax = -1``). Accepted jets come from a wide pTHat
  range: ISR recoil and hard wide-angle emissions merging into the jet bring
  jets from pTHat down to ~275 GeV into the 500-550 GeV window (mostly quark
  jets: about 2% of them come from pTHat < 300 GeV and 6% from < 350 GeV,
  against 0.4% of gluon jets from < 350 GeV), and out-of-cone radiation
  brings gluon jets from pTHat up to ~1100 GeV (0.1% above 1000 GeV) down
  into it; events above 1000 GeV are too rare to cost anything. pTHat
  150-250 GeV would add < 0.25% to the quark and < 0.1% to the gluon jets
  (measured upper bounds). A window from 450 GeV up, say, would be 3-4
  times faster but would drop ~15% of the quark and ~7% of the gluon jets.
* Speed-ups that only skip events which cannot give an accepted jet (so
  the accepted jets are those of the plain chain; ~12x faster than it with
  this pTHat window: ~18 instead of ~1.5 jets/s on one core):
  (1) quark class: the process-level c/b veto above;
  (2) when the interleaved ISR/FSR/MPI evolution reaches VETO_SCALE = 8 GeV
  (UserHooks doVetoPT), the event is abandoned unless its final-state
  partons and photons so far (not the Z, not neutrinos) have an anti-kT
  R = 1.0 jet with pT > 450 GeV and |y| < 2.2. Later emissions are softer
  than 8 GeV; in 625 accepted jets generated without this veto, that R = 1.0
  parton jet was never below 496 GeV nor beyond |y| = 1.72. ~90% of the
  events stop there, at a small fraction of the cost of a full event;
  (3) after hadronization, Pythia's SlowJet (the same anti-kT R = 0.4 in the
  fjcore bundled with Pythia, run in C++ on the same particles: identical
  hardest jets in 3000 events checked) must find a hardest jet with
  480 < pT < 570 GeV and |y| < 1.9 before the event goes to FastJet.
* Jets: FastJet anti-kT, R = 0.4, E-scheme, on all final-state particles but
  neutrinos; only the hardest jet of the event is considered, and the event
  is rejected if it fails 500 < pT < 550 GeV and |y| < 1.7 (y = rapidity).
* N-subjettiness: axes are the exclusive-kT subjets (kt_algorithm,
  R = JetDefinition.max_allowable_R = 1000, E-scheme, as in fastjet-contrib's
  ExclusiveJetAxes) of the jet's constituents, exclusive_jets(N), no axis
  optimisation; distances dR = sqrt(dy^2 + dphi^2) in rapidity and azimuth
  (wrapped to [-pi, pi]); tau_N^beta = sum_i pT_i min_k dR_ik^beta / pT_jet
  with pT_jet the jet's (E-scheme) pT, no characteristic radius R0. A jet
  with N or fewer constituents has tau_N = 0 exactly. With these
  (unoptimised) axes tau_N^beta falls with N for beta = 2, but for beta = 0.5
  and 1 tau_{N+1} > tau_N happens (mostly tau_2 > tau_1, in ~13% of jets).
* Seeding: the work is split into chunks of CHUNK_JETS = 250 jets of one
  class; chunk c of class k (1 = quark, 0 = gluon) runs a fresh Pythia with
  ``Random:seed = (b + 2c + k) % 900000000 + 1``, b drawn from ``seed`` by
  numpy's SeedSequence, so all chunks of a run have distinct seeds. Results are
  assembled in chunk order, so they do not depend on the worker count, then
  shuffled with ``np.random.default_rng(seed)``. Classes are exactly
  balanced, so the number of jets must be even. Workers are spawned
  processes: a script calling generate(workers > 1) needs the usual
  ``if __name__ == "__main__":`` guard.
* Output: float32 features, int8 labels (an .npz also holding ``meta``, a
  JSON string with all settings and versions).
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from qgtools.data import BETAS, FEATURE_NAMES
from qgtools.data import N_AXES as N_MAX

CHUNK_JETS = 250
ECM = 14000.0
PTHAT_MIN = 250.0  # GeV; see the module docstring
PTHAT_MAX = -1.0  # no upper limit
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
FEATURES = FEATURE_NAMES  # one definition, in qgtools.data

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


def pythia_seed(seed: int, label: int, chunk: int) -> int:
    """Pythia ``Random:seed`` (1..900000000) for one chunk of one class.

    A base drawn from ``seed`` by numpy's SeedSequence, plus 2 * chunk + label:
    distinct for all chunks of a run (Pythia gives independent random
    sequences for distinct seeds).
    """
    base = int(np.random.SeedSequence(seed).generate_state(1)[0])
    return (base + 2 * chunk + label) % MAX_SEED + 1


def nsubjettiness(
    y: np.ndarray, phi: np.ndarray, pt: np.ndarray, axes: list[np.ndarray], pt_jet: float
) -> np.ndarray:
    """The N_MAX * len(BETAS) values tau_N^beta, N-major, beta in BETAS.

    Constituents are given by the arrays y, phi, pt; ``axes[N-1]`` is an
    (N, 2) array of the (y, phi) of the N axes. tau_N for N > len(axes) is 0
    (the caller gives no axes for N >= number of constituents).
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
        At parton-shower scale VETO_SCALE: no anti-kT R = PROXY_R jet of the
        partons so far with pT > PROXY_PT_MIN and |y| < PROXY_ABS_Y_MAX.
        """

        def __init__(self, quark: bool) -> None:
            super().__init__()
            self.quark = quark
            self.proxy_pt = 0.0  # pT of the last event's hardest central proxy jet
            self.jet_def = fastjet.JetDefinition(
                fastjet.antikt_algorithm, PROXY_R, fastjet.E_scheme
            )

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
            cs = fastjet.ClusterSequence(partons, self.jet_def)
            jets = cs.inclusive_jets(PROXY_PT_MIN)
            self.proxy_pt = max(
                (j.pt() for j in jets if abs(j.rap()) < PROXY_ABS_Y_MAX), default=0.0
            )
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
    # hooks must stay referenced while pythia runs (it only holds a pointer)
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


def generate_chunk(label: int, pythia_seed: int, n_jets: int) -> np.ndarray:
    """Generate ``n_jets`` accepted jets of one class; returns (n_jets, 45) float32."""
    out = np.empty((n_jets, len(FEATURES)), dtype=np.float32)
    # strict=False: accepted_jets is endless, range(n_jets) sets the length (and comes first,
    # so no extra jet is generated after the last one)
    for i, (features, _, _) in zip(range(n_jets), accepted_jets(label, pythia_seed), strict=False):
        out[i] = features
    return out


def _run_job(job: tuple[int, int, int]) -> np.ndarray:
    return generate_chunk(*job)


def numbers_problem(n_jets: int, seed: int, workers: int) -> str | None:
    """What is wrong with these arguments of :func:`generate`, or None."""
    if n_jets <= 0 or n_jets % 2:
        return f"n_jets must be a positive even number (balanced classes), got {n_jets}"
    if seed < 0:
        return f"seed must be >= 0, got {seed}"
    if workers < 1:
        return f"workers must be >= 1, got {workers}"
    return None


def generate(
    n_jets: int, seed: int = 0, workers: int = 1, progress: bool = False
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Generate ``n_jets`` jets, half quark half gluon, shuffled.

    Returns X (n_jets, 45) float32, y (n_jets,) int8 (1 = quark, 0 = gluon)
    and a metadata dict. X and y depend on ``n_jets`` and ``seed`` only, not
    on ``workers``.
    """
    problem = numbers_problem(n_jets, seed, workers)
    if problem:
        raise ValueError(problem)
    _import_backends()  # fail early, with the install hint
    n_class = n_jets // 2
    sizes = [min(CHUNK_JETS, n_class - start) for start in range(0, n_class, CHUNK_JETS)]
    jobs = [
        (label, pythia_seed(seed, label, c), size)
        for c, size in enumerate(sizes)
        for label in (QUARK, GLUON)
    ]

    start = time.time()
    bar = _progress_bar(n_jets) if progress else None
    pool = None
    if workers == 1:
        chunks: Iterator[np.ndarray] = map(_run_job, jobs)
    else:
        pool = multiprocessing.get_context("spawn").Pool(min(workers, len(jobs)))
        chunks = pool.imap(_run_job, jobs)  # results in job order
    results = []
    try:
        for chunk in chunks:
            results.append(chunk)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if pool is not None:
            pool.terminate()
        if bar is not None:
            bar.close()

    X = np.concatenate(results)
    y = np.concatenate([np.full(size, label, dtype=np.int8) for label, _, size in jobs])
    perm = np.random.default_rng(seed).permutation(n_jets)
    meta = _metadata(n_jets, seed, workers, time.time() - start)
    return X[perm], y[perm], meta


def _progress_bar(total: int) -> Any:
    """A tqdm bar on stderr (jets, with ETA), or None without tqdm."""
    try:
        from tqdm import tqdm
    except ImportError:
        print("(pip install tqdm for a progress bar)", file=sys.stderr)
        return None
    return tqdm(total=total, unit="jet", file=sys.stderr, smoothing=0.05)


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
        "pythia_seeding": "Random:setSeed = on, Random:seed = (SeedSequence(seed)"
        ".generate_state(1)[0] + 2 * chunk + label) % 900000000 + 1",
        "chunk_jets": CHUNK_JETS,
        "quark_selection": "process-level veto unless the outgoing hard quark is u, d or s",
        "pthat_window": [PTHAT_MIN, PTHAT_MAX],
        "jet_definition": f"FastJet anti-kT R={JET_R} E-scheme, hardest jet only",
        "jet_inputs": "final-state particles except |id| in (12, 14, 16)",
        "jet_cuts": {"pt_min": JET_PT_MIN, "pt_max": JET_PT_MAX, "abs_y_max": JET_ABS_Y_MAX},
        "nsubjettiness": "tau_N^beta = sum_i pT_i min_k dR_ik^beta / pT_jet; axes: exclusive kT "
        "subjets (R=1000, E-scheme); dR in (y, phi); tau_N = 0 if n_constituents <= N",
        "early_veto": {
            "scale_gev": VETO_SCALE,
            "proxy": f"anti-kT R={PROXY_R} jet of the partons at that scale",
            "proxy_pt_min": PROXY_PT_MIN,
            "proxy_abs_y_max": PROXY_ABS_Y_MAX,
        },
        "slowjet_preselection": {
            "pt_min": PRESEL_PT_MIN,
            "pt_max": PRESEL_PT_MAX,
            "abs_y_max": PRESEL_ABS_Y_MAX,
        },
        "versions": {pkg: version(pkg) for pkg in ("pythia8mc", "fastjet", "numpy")},
        "python": sys.version.split()[0],
        "command": " ".join(sys.argv),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def save(path: str, X: np.ndarray, y: np.ndarray, meta: dict) -> None:
    """Write X, y and meta (a JSON string) to a compressed .npz file."""
    np.savez_compressed(path, X=X, y=y, meta=np.array(json.dumps(meta)))


def out_problem(out: str) -> str | None:
    """Why ``out`` cannot take the generated file, or None if it can: asked before a
    generation that may take hours, not after it."""
    path = Path(out)
    if path.is_dir():
        return f"{path} is a folder: give a file name ending in .npz"
    if path.suffix != ".npz":
        return "must end in .npz (numpy would add it to the name otherwise)"
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        return f"{folder} is a file, not a folder: choose another path"
    if not folder.is_dir():
        return f"the folder {folder} does not exist: create it first, or choose another"
    try:  # a real write, as os.access cannot tell for root or read-only file systems
        fd, probe = tempfile.mkstemp(prefix=".qgtools-write-test-", dir=folder)
    except OSError as error:
        return f"cannot write to {folder} ({error.strerror}): choose a folder you can write to"
    os.close(fd)
    os.unlink(probe)
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path} exists and cannot be overwritten: choose another name"
    return None


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
    problem = out_problem(args.out)
    if problem:
        parser.error(f"--out {args.out}: {problem}")
    problem = numbers_problem(args.jets, args.seed, args.workers)
    if problem:
        parser.error(problem)
    X, y, meta = generate(args.jets, args.seed, args.workers, progress=not args.no_progress)
    cli_args = sys.argv[1:] if argv is None else argv
    meta["command"] = "python -m qgtools.generate " + " ".join(cli_args)
    save(args.out, X, y, meta)
    print(f"wrote {args.out}: {len(y)} jets in {meta['wall_seconds']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
