"""The suppression plan: which cells are hidden and the certificates that protect them.

Why a plan object: secondary suppression is a greedy over "demands" (a hidden cell without a
certificate, or one whose certificates all touch some insider's own leaves), and the polish pass
that follows must know, for every hidden cell, which certificates cover it. Both work on the same
bookkeeping: certificate → (leaves, signs, cells it changes, insiders it touches) and cell →
covering certificates. A cell is settled when it is covered and, for every insider that could know
part of it, some covering certificate leaves that insider's leaves alone.

Polish (after the greedy): secondary cells are tried in order of decreasing cost; one is published
again if every hidden cell that loses a certificate can be re-certified by hiding other cells of
smaller total cost (a swap); otherwise everything the attempt did is undone.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from isu.suppress_box import BIG, BoxSearch
from isu.suppress_model import Model

__all__ = ["Insiders", "Plan"]

MAX_AFFECTED = 400


class Insiders:
    """Who knows what: insider ids are contributor ids, then n_contrib + leaf id for count-1 leaves."""

    def __init__(self, model: Model, singletons: bool):
        self.m, self.single = model, singletons
        self.nc = len(model.contributors)
        self.active = bool(self.nc) or singletons
        leaf_of = np.repeat(np.arange(len(model.leaf_value)), np.diff(model.inc_ptr))
        cmin = np.full(model.n_cells, np.iinfo(np.int64).max)
        cmax = np.full(model.n_cells, -1)
        np.minimum.at(cmin, model.inc_cells, model.leaf_contrib[leaf_of])
        np.maximum.at(cmax, model.inc_cells, model.leaf_contrib[leaf_of])
        own_c = np.where((cmin == cmax) & (cmax >= 0), cmax, -1)
        lmax = np.full(model.n_cells, -1)
        np.maximum.at(lmax, model.inc_cells, leaf_of)
        own_s = np.where(model.cell_value == 1, lmax + self.nc, -1) if singletons else np.full(model.n_cells, -1)
        self.own_c, self.own_s = own_c.tolist(), own_s.tolist()

    def of(self, leaves: np.ndarray) -> frozenset[int]:
        if not self.active:
            return frozenset()
        out = {c for c in self.m.leaf_contrib[leaves].tolist() if c >= 0}
        if self.single:
            out |= {leaf + self.nc for leaf in leaves[self.m.leaf_value[leaves] == 1].tolist()}
        return frozenset(out)

    def rel(self, knows: frozenset[int], cell: int) -> set[int]:
        """Insiders touched by a certificate that do not already know all of ``cell``."""
        return set(knows) - {self.own_c[cell], self.own_s[cell]} if knows else set()


class Plan:
    def __init__(self, model: Model, status: np.ndarray, cost: np.ndarray, search: BoxSearch, ins: Insiders):
        self.m, self.status, self.cost0, self.search, self.ins = model, status, cost.copy(), search, ins
        self.certs: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, frozenset[int]]] = {}
        self.cover: dict[int, list[int]] = {}
        self.next_id = 0

    def _add(self, found) -> int:
        leaves, signs, cells, _ = found
        b = self.next_id
        self.next_id += 1
        self.certs[b] = (leaves, signs, cells, self.ins.of(leaves))
        for c in cells.tolist():
            self.cover.setdefault(c, []).append(b)
        return b

    def _drop(self, b: int) -> None:
        for c in self.certs.pop(b)[2].tolist():
            self.cover[c].remove(b)

    def unavoided(self, c: int, skip: frozenset[int] = frozenset()) -> set[int] | None:
        """Insiders present in every certificate covering c (None: c is not covered at all)."""
        out = None
        for b in self.cover.get(c, ()):
            if b in skip:
                continue
            rel = self.ins.rel(self.certs[b][3], c)
            out = rel if out is None else out & rel
            if not out:
                return out
        return out

    def _search(self, h: int, u: set[int] | None):
        """A certificate for h avoiding every insider in ``u``, else (h may be all theirs) avoiding one
        of them; progress is kept since the next round's ``u`` no longer holds that one."""
        found = self.search.certificate(h, u or set())
        if found is None and u and len(u) > 1:
            found = self.search.certificate(h, {min(u)})
        return found

    def protect(self, order: np.ndarray) -> None:
        """Greedy: give every hidden cell certificates until all are settled."""
        queue = deque(order.tolist())
        while queue:
            h = queue.popleft()
            u = self.unavoided(h)
            if u is not None and not u:
                continue
            found = self._search(h, u)
            if found is None:
                raise RuntimeError(f"no certificate for cell {h}; this is a bug in isu.suppress")
            cells = found[2]
            fresh = cells[self.status[cells] == 0]
            self.status[fresh] = 2
            self.search.hide(cells)
            self._add(found)
            queue.extend(fresh.tolist())
            if self.unavoided(h):  # its first certificate touched insiders: it needs another one
                queue.append(h)

    def polish(self, attempts: int) -> int:
        """Swap moves: publish a secondary cell back when the hidden cells that lose a certificate can be
        re-certified by hiding cells of smaller total cost. Costliest first; returns how many were freed."""
        sec = np.flatnonzero(self.status == 2)
        order = sec[np.lexsort((sec, -self.cost0[sec]))][:attempts]
        freed = 0
        for s in order.tolist():
            drop = frozenset(self.cover.get(s, ()))
            affected = sorted({c for b in drop for c in self.certs[b][2].tolist()} - {s})
            if len(affected) > MAX_AFFECTED:  # wide certificates are rarely replaceable cheaply
                continue
            self.status[s] = 0
            self.search.set_cost(np.array([s]), BIG)
            added, _ = self._replace(affected, drop, float(self.cost0[s]))
            if added is not None:
                for b in drop:
                    self._drop(b)
                self.search.set_cost(np.array([s]), self.cost0[s])
                freed += 1
                continue
            self.status[s] = 2
            self.search.set_cost(np.array([s]), 0.0)
        return freed

    def _replace(self, affected: list[int], drop: frozenset[int], budget: float):
        """Re-certify ``affected`` without the ``drop`` certificates, hiding new cells worth < budget.
        Returns (certificates added, cells hidden) or (None, []) after undoing everything."""
        added: list[int] = []
        hidden: list[int] = []
        spent = 0.0
        queue = deque(affected)
        ok = True
        while queue:
            c = queue.popleft()
            u = self.unavoided(c, drop)
            if u is not None and not u:
                continue
            found = self._search(c, u)
            if found is None:
                ok = False
                break
            cells = found[2]
            fresh = cells[self.status[cells] == 0]
            spent += float(self.cost0[fresh].sum())
            if spent >= budget:
                ok = False
                break
            self.status[fresh] = 2
            self.search.hide(fresh)
            hidden += fresh.tolist()
            added.append(self._add(found))
            queue.extend(fresh.tolist())
            if self.unavoided(c, drop):
                queue.append(c)
        if ok:
            return added, hidden
        for b in added:
            self._drop(b)
        if hidden:
            h = np.array(hidden)
            self.status[h] = 0
            self.search.set_cost(h, self.cost0[h])
        return None, []

    def certificates(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(v[0], v[1]) for _, v in sorted(self.certs.items())]
