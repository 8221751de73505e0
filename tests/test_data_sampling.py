"""Temporal sampling of every protocol preset against the worked examples of
research/datasets-and-eval-protocols.md §2 (0-based frame indices; TSM's 1-based files minus 1).

Where the document has no worked example for a preset's exact parameters, the expected list was
computed by hand from the formula the document quotes (marked 'formula')."""
import pytest

from tembench.data import sampling
from tembench.data.protocols import PRESETS, get_protocol
from tembench.errors import UsageError

TSN_300_8 = [18, 56, 93, 131, 168, 206, 243, 281]  # §2.1
TSN_TWICE_300_8 = [0, 37, 75, 112, 150, 187, 225, 262]  # §2.1
TSM_1IDX = [19, 57, 94, 132, 169, 207, 244, 282]  # §2.2, files (1-indexed)
UNIFORM_48_16_C1 = [1, 4, 7, 10, 13, 16, 19, 22, 25, 27, 30, 33, 36, 39, 42, 45]  # §2.5
UNIFORM_48_16_C2_V0 = [0, 3, 6, 9, 12, 15, 18, 21, 24, 26, 29, 32, 35, 38, 41, 44]  # §2.5 ("[0, 3, ..., 44]")


def views(preset, num_frames, frames, clips=None, **params):
    p = get_protocol(preset)
    return sampling.sample(p.sampler, num_frames, frames, clips or p.clips, key="video-1",
                           **{**p.sampler_params, **params})


def check_tsn_1x1():
    assert views("tsn-1x1", 300, 8) == [TSN_300_8]


def check_tsn_25x10():  # formula: avg = 12, centres 6 + 12k
    assert views("tsn-25x10", 300, 25) == [[6 + 12 * k for k in range(25)]]


def check_tsm_1x1():
    assert [[i + 1 for i in v] for v in views("tsm-1x1", 300, 8)] == [TSM_1IDX]


def check_tsm_2x3():
    assert views("tsm-2x3", 300, 8) == [TSN_300_8, TSN_TWICE_300_8]


def _dense(preset):
    v = views(preset, 300, 8)
    assert len(v) == 10
    assert [i + 1 for i in v[0]] == [1, 9, 17, 25, 33, 41, 49, 57]  # §2.2 first view
    assert [i + 1 for i in v[-1]] == [237, 245, 253, 261, 269, 277, 285, 293]  # §2.2 last view


def check_tsm_dense_10x3():
    _dense("tsm-dense-10x3")


def check_tam_k400_10x3():
    _dense("tam-k400-10x3")


def check_tam_ssv1_1x1():  # uniform-1 = segment centres (TAM dataset.py)
    assert views("tam-ssv1-1x1", 300, 8) == [TSN_300_8]


def check_tam_ssv2_2x3():  # formula: tick 37.5, starts linspace(0, 36.5, 2, int) = [0, 36]
    assert views("tam-ssv2-2x3", 300, 8) == [[0, 37, 75, 112, 150, 187, 225, 262],
                                            [36, 73, 111, 148, 186, 223, 261, 298]]


def check_atm_ss_2x3():
    assert views("atm-ss-2x3", 48, 16) == [UNIFORM_48_16_C2_V0, UNIFORM_48_16_C1]


def check_atm_k400_2x3():  # same arithmetic as TAM uniform-2
    assert views("atm-k400-2x3", 300, 8) == views("tam-ssv2-2x3", 300, 8)


def check_ila_4x3():  # random inside each segment (avg = 37): seeded, one frame per segment
    v = views("ila-4x3", 300, 8)
    assert v == views("ila-4x3", 300, 8) and len(v) == 4 and len({tuple(x) for x in v}) > 1
    for clip in v:
        assert all(37 * k <= i < 37 * (k + 1) for k, i in enumerate(clip))


def check_ila_1x1():  # §2.5: PySlowFast midpoints equal the C=1 uniform list for N=48, T=16
    assert views("ila-1x1", 48, 16) == [UNIFORM_48_16_C1]


def check_emim_ss_1x3():
    assert views("emim-ss-1x3", 48, 16) == [UNIFORM_48_16_C1]


def check_uniformer_ss_1x3():
    assert views("uniformer-ss-1x3", 48, 16) == [UNIFORM_48_16_C1]


def _pyslowfast_k400(preset):
    # §2.4 worked example (32 frames, rate 2, 10 views) through the preset's sampler
    v = views(preset, 300, 32, clips=10, rate=2)
    assert [x[0] for x in v] == [0, 23, 47, 70, 94, 118, 141, 165, 188, 212]
    assert v[0][:3] == [0, 2, 4] and v[0][-2:] == [60, 63]
    # the preset's own 16x4, 4 clips: clip 64 frames, delta 236, starts 236*k/4 (formula)
    assert [x[0] for x in views(preset, 300, 16)] == [0, 59, 118, 177]


def check_emim_k400_4x3():
    _pyslowfast_k400("emim-k400-4x3")


def check_uniformer_k400_4x1():
    _pyslowfast_k400("uniformer-k400-4x1")


def check_slowfast_10x3():
    v = views("slowfast-10x3", 300, 32)
    assert [x[0] for x in v] == [0, 23, 47, 70, 94, 118, 141, 165, 188, 212]
    assert [x[0] for x in views("slowfast-10x3", 300, 32, offset_sampling=True)] == list(range(0, 235, 26))


def check_mmaction_3d_10x3():  # §2.3
    assert [x[0] for x in views("mmaction-3d-10x3", 300, 32)] == [0, 26, 53, 79, 105, 132, 158, 184, 211, 237]
    one = views("mmaction-3d-10x3", 300, 32, clips=1)[0]
    assert one == list(range(118, 181, 2))
    assert [x[0] for x in views("mmaction-3d-10x3", 300, 16, clips=5, interval=4)] == [0, 60, 120, 179, 239]
    assert views("mmaction-3d-10x3", 40, 32, clips=1) == [list(range(0, 40, 2)) + list(range(0, 24, 2))]


def check_charades_10x3_max():  # formula: span 57, gap 243/9 = 27
    v = views("charades-10x3-max", 300, 8)
    assert [x[0] for x in v] == [27 * k for k in range(10)] and v[0] == list(range(0, 57, 8))
    assert views("charades-10x3-max", 20, 8)[0] == [0, 8, 16, 19, 19, 19, 19, 19]  # clamped to L-1


CHECKS = {name: globals()[f"check_{name.replace('-', '_')}"] for name in PRESETS}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_sampling_matches_the_worked_example(preset):
    CHECKS[preset]()


def test_tsn_sampler_refuses_more_than_two_clips():
    with pytest.raises(UsageError, match="twice-sample"):
        sampling.tsn(300, 8, 3)
    with pytest.raises(UsageError, match="TSN segment sampling"):
        get_protocol("tsm-1x1").with_views(None, None, 4)


def test_short_videos_stay_in_range():
    for name, fn in sampling.SAMPLERS.items():
        for n in (1, 2, 5, 9):
            for clip in sampling.sample(name, n, 8, 2, key="x"):
                assert len(clip) == 8 and all(0 <= i < n for i in clip), (name, n, clip)


def test_unknown_sampler_and_protocol_are_usage_errors():
    with pytest.raises(UsageError, match="unknown temporal sampler"):
        sampling.sample("nope", 10, 8, 1)
    with pytest.raises(UsageError, match="closest: tsm-1x1"):
        get_protocol("tsm-1x")
