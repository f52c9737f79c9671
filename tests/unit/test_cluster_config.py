"""Several Elasticsearch nodes: RECMATCH_ES_URL with many hosts, the client's node pool, the local cluster's files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from recmatch.core.config import Settings
from recmatch.core.es import client_options, load_mapping, make_client, mapping_names
from recmatch.ops.localnode import LocalCluster, LocalNode

THREE = "http://127.0.0.1:9250, http://127.0.0.1:9251/,http://127.0.0.1:9252"


def test_es_url_names_several_nodes_comma_separated():
    settings = Settings(es_url=THREE)
    assert settings.es_hosts == ["http://127.0.0.1:9250", "http://127.0.0.1:9251", "http://127.0.0.1:9252"]
    assert Settings(es_url="http://es:9200/").es_hosts == ["http://es:9200"]


@pytest.mark.parametrize(("url", "says"), [
    ("http://a:9200,,http://b:9200", "empty host"),
    ("http://a:9200,b:9200", "'b:9200' must start with"),
    ("http://a:9200,https://b:9200", "mixes"),
])
def test_es_url_with_a_bad_host_is_refused_naming_it(url, says):
    with pytest.raises(ValidationError, match=says):
        Settings(es_url=url)


def test_the_client_pools_every_node_round_robin_without_sniffing():
    options = client_options(Settings(es_url=THREE))
    assert options["hosts"] == Settings(es_url=THREE).es_hosts
    assert options["node_selector_class"] == "round_robin"
    assert not options["sniff_on_start"] and not options["sniff_on_node_failure"]
    client = make_client(Settings(es_url=THREE))
    try:
        assert sorted(node.base_url for node in client.transport.node_pool.all()) == Settings(es_url=THREE).es_hosts
    finally:
        client.close()


def test_small_indices_expand_their_replicas_with_the_cluster():
    for name in mapping_names():
        index = load_mapping(name)["settings"]["index"]
        if name == "candidates":
            assert index["number_of_replicas"] == 0  # RECMATCH_CANDIDATES_REPLICAS decides, per deployment
        else:
            assert index.get("auto_expand_replicas") == "0-1" and "number_of_replicas" not in index, name


def test_a_three_node_local_cluster_has_distinct_ports_and_one_discovery(tmp_path: Path):
    settings = Settings(cache_dir=tmp_path, local_es_port=9250, local_es_cluster_heap="512m")
    nodes = LocalCluster(settings, 3).nodes
    assert [node.port for node in nodes] == [9250, 9251, 9252]
    assert [node.transport_port for node in nodes] == [9350, 9351, 9352]
    assert len({node.node_dir for node in nodes}) == 3
    for node in nodes:
        (node.home / "config").mkdir(parents=True, exist_ok=True)
        node._configure(user=None)
        config = yaml.safe_load((node.node_dir / "config" / "elasticsearch.yml").read_text())
        assert config["http.port"] == node.port and config["transport.port"] == node.transport_port
        assert config["discovery.seed_hosts"] == ["127.0.0.1:9350", "127.0.0.1:9351", "127.0.0.1:9352"]
        assert config["cluster.initial_master_nodes"] == ["node-9250", "node-9251", "node-9252"]
        assert "discovery.type" not in config and config["cluster.name"] == nodes[0].cluster_name
        assert config["path.data"] == str(node.node_dir / "data")
        assert "-Xmx512m" in (node.node_dir / "config" / "jvm.options.d" / "recmatch.options").read_text()


def test_a_single_local_node_keeps_single_node_discovery(tmp_path: Path):
    node = LocalNode(Settings(cache_dir=tmp_path))
    (node.home / "config").mkdir(parents=True)
    node._configure(user=None)
    config = yaml.safe_load((node.node_dir / "config" / "elasticsearch.yml").read_text())
    assert config["discovery.type"] == "single-node" and config["http.port"] == 9200


def test_es_status_and_down_find_every_node_from_the_record(tmp_path: Path):
    settings = Settings(cache_dir=tmp_path, local_es_port=9260)
    LocalCluster(settings, 3)._write_record(3)
    assert [node.port for node in LocalCluster(settings).nodes] == [9260, 9261, 9262]
    assert not LocalCluster(settings).status().running
