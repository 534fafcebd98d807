"""Dependency cycles between transactions, named as Adya does: a cycle of ww edges is G0,
of ww and wr edges G1c, with one rw edge G-single, with more G2. Shared by the append
and rw-register checkers, which differ only in how they find the edges.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

from composer.history import Operation

__all__ = ["cycles", "Graph"]

#: transaction index -> {transaction index: edge kind ("ww", "wr", "rw")}
Graph = dict[int, dict[int, str]]


def cycles(graph: Graph, txns: list[Operation]) -> Iterator[tuple[str, str]]:
    """One cycle per strongly connected component, named by its edges: only ww is G0,
    ww and wr G1c, one rw G-single, more G2. Each kind is searched for in the graph of
    the edges it allows, so a G0 hides no G1c found elsewhere; a cycle already reported
    under a lesser kind is not reported again."""
    by_index = {op.index: op for op in txns}
    # only transactions on a cycle of the whole graph can be on a cycle of a part of it:
    # most histories have none, and then one pass is all it takes
    cyclic = {node for component in _components(graph) for node in component}
    for name, allowed in (("G0", {"ww"}), ("G1c", {"ww", "wr"}),
                          ("G-single", {"ww", "wr", "rw"})):
        sub = {a: {b: k for b, k in graph[a].items() if k in allowed and b in cyclic}
               for a in cyclic}
        for component in _components(sub):
            cycle = _cycle_in(sub, component)
            if cycle is None:
                continue
            kinds = [sub[a][b] for a, b in zip(cycle, cycle[1:])]
            rw = kinds.count("rw")
            found = ("G0" if set(kinds) == {"ww"} else "G1c" if rw == 0
                     else "G-single" if rw == 1 else "G2")
            if found == name or (name == "G-single" and found == "G2"):
                text = " -> ".join(f"{by_index[a].describe()} -{k}->"
                                   for a, k in zip(cycle, kinds))
                yield found, f"{text} {by_index[cycle[0]].describe()}"


def _components(graph: Graph) -> list[list[int]]:
    """Tarjan's strongly connected components of more than one node, iteratively."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    found = []
    counter = 0
    for root in list(graph):
        if root in index:
            continue
        work = [(root, iter(graph.get(root, {})))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, {}))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def _cycle_in(graph: Graph, component: list[int]) -> list[int] | None:
    """A shortest cycle through the component's first node (breadth first), closed: its
    first node repeated at the end."""
    members = set(component)
    start = component[0]
    parent: dict[int, int] = {}
    queue = collections.deque([start])
    while queue:
        node = queue.popleft()
        for child in graph.get(node, {}):
            if child not in members:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if child not in parent:
                parent[child] = node
                queue.append(child)
    return None
