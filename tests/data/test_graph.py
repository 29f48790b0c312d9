import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from tensorprop.data.graph import build_graph
from tensorprop.data.records import Crystal
from tensorprop.errors import DataError
from tests.conftest import rocksalt_nacl, triclinic, wurtzite_zno


def _edge_set(receivers, senders, shifts):
    return sorted((int(i), int(j), *np.round(s, 6)) for i, j, s in zip(receivers, senders, shifts))


@pytest.mark.parametrize("crystal", [rocksalt_nacl(), wurtzite_zno(), triclinic()], ids=lambda c: c.label)
@pytest.mark.parametrize("cutoff", [3.0, 5.0, 7.5])
def test_neighbour_list_matches_ase(crystal, cutoff):
    """Same directed edges and image shifts as ase's neighbour list, also with cutoff > cell size."""
    g = build_graph(crystal, cutoff)
    i, j, s = neighbor_list("ijS", crystal.to_ase(), cutoff)
    assert g.n_edges == len(i) > 0
    assert _edge_set(g.receivers, g.senders, g.shifts) == _edge_set(i, j, s @ crystal.cell)
    vectors = g.positions[g.senders] - g.positions[g.receivers] + g.shifts
    assert np.linalg.norm(vectors, axis=1).max() < cutoff


def test_molecule_without_periodicity():
    water = Crystal(numbers=[8, 1, 1], positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], cell=np.zeros((3, 3)),
                    pbc=False)
    g = build_graph(water, 3.0)
    assert g.n_edges == 6 and np.all(g.shifts == 0)


def test_isolated_atom_is_a_clear_error():
    c = Crystal(numbers=[11, 17, 8], positions=[[0, 0, 0], [2.8, 0, 0], [10, 10, 10]], cell=np.eye(3) * 20,
                pbc=True, label="lonely.xyz#4")
    with pytest.raises(DataError, match=r"lonely.xyz#4, structure 4: atom 2 \(O\) has no neighbour within the cutoff"):
        build_graph(c, 5.0, index=4)
    assert build_graph(c, 5.0, allow_isolated=True).n_edges == 2
