from finkdl.local.broker import cluster_id


def test_a_cluster_id_never_starts_with_a_dash_which_kafka_storage_takes_for_an_option():
    draws = iter([b"\xf8" + bytes(15), bytes(16)])  # the first encodes as "-A…"
    assert cluster_id(lambda: next(draws)) == "A" * 22


def test_cluster_ids_are_22_characters_of_base64url_and_differ():
    ids = {cluster_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
