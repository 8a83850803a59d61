from finkdl.plan import split_limit


def test_limit_is_shared_evenly_and_exactly():
    assert split_limit({0: 100, 1: 100, 2: 100}, 30) == {0: 10, 1: 10, 2: 10}
    assert sum(split_limit({0: 100, 1: 100, 2: 100}, 31).values()) == 31


def test_limit_moves_to_partitions_that_still_have_alerts():
    assert split_limit({0: 2, 1: 100, 2: 0}, 50) == {0: 2, 1: 48, 2: 0}


def test_limit_larger_than_the_topic_takes_everything():
    assert split_limit({0: 5, 1: 7}, 1000) == {0: 5, 1: 7}


def test_limit_zero_takes_nothing():
    assert split_limit({0: 5}, 0) == {0: 0}
