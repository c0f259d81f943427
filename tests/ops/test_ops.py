# Offline checks of the operations files (issue 7): Kubernetes manifests
# (no schema checker is packaged in Debian, so the fields that matter are
# checked here), Prometheus rules, the systemd unit, the Docker files, and
# that the RUNBOOK and the example config document what the code has.

import glob
import os
import re
import shutil
import subprocess

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
K8S = os.path.join(REPO, "ops", "k8s")


def read(*parts):
    with open(os.path.join(REPO, *parts)) as f:
        return f.read()


def k8s_docs():
    docs = []
    for path in sorted(glob.glob(os.path.join(K8S, "*.yaml"))):
        if os.path.basename(path) == "kustomization.yaml":
            continue
        with open(path) as f:
            for d in yaml.safe_load_all(f):
                if d is not None:
                    docs.append((os.path.basename(path), d))
    return docs


def by_kind(kind):
    return [d for _, d in k8s_docs() if d["kind"] == kind]


def one(kind, name):
    found = [d for d in by_kind(kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, found)
    return found[0]


REQUIRED = {
    "Namespace": [],
    "ConfigMap": ["data"],
    "Secret": ["type"],
    "Service": ["spec.selector", "spec.ports"],
    "PersistentVolumeClaim": ["spec.accessModes", "spec.resources.requests.storage"],
    "Deployment": ["spec.selector.matchLabels", "spec.template.metadata.labels",
                   "spec.template.spec.containers"],
    "PodDisruptionBudget": ["spec.selector.matchLabels"],
}
API = {"Namespace": "v1", "ConfigMap": "v1", "Secret": "v1", "Service": "v1",
       "PersistentVolumeClaim": "v1", "Deployment": "apps/v1",
       "PodDisruptionBudget": "policy/v1"}


def get(d, dotted):
    for k in dotted.split("."):
        assert isinstance(d, dict) and k in d, dotted
        d = d[k]
    return d


def test_manifests_parse_and_have_required_fields():
    docs = k8s_docs()
    assert docs
    names = set()
    for f, d in docs:
        assert d.get("kind") in REQUIRED, (f, d.get("kind"))
        assert d["apiVersion"] == API[d["kind"]], (f, d["kind"], d["apiVersion"])
        name = get(d, "metadata.name")
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63, name
        assert (d["kind"], name) not in names, ("duplicate", d["kind"], name)
        names.add((d["kind"], name))
        for field in REQUIRED[d["kind"]]:
            get(d, field)
        if d["kind"] == "Deployment":
            sel = get(d, "spec.selector.matchLabels")
            labels = get(d, "spec.template.metadata.labels")
            assert all(labels.get(k) == v for k, v in sel.items()), (name, sel, labels)
            for c in get(d, "spec.template.spec.containers"):
                assert c["name"] and c["image"]


def test_kustomization_lists_every_manifest():
    with open(os.path.join(K8S, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(K8S, "*.yaml"))
                   if not p.endswith("kustomization.yaml"))
    assert sorted(k["resources"]) == files


def container(dep, name):
    cs = [c for c in get(dep, "spec.template.spec.containers") if c["name"] == name]
    assert len(cs) == 1
    return cs[0]


def port_number(c, port):
    if isinstance(port, int):
        return port
    ps = [p["containerPort"] for p in c["ports"] if p["name"] == port]
    assert ps, "no container port named %s" % port
    return ps[0]


def test_roost_deployment_probes_drain_and_rollout():
    dep = one("Deployment", "roost")
    spec = dep["spec"]
    assert spec["replicas"] >= 2
    ru = spec["strategy"]["rollingUpdate"]
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert ru["maxUnavailable"] == 0 and ru["maxSurge"] == 1
    pod = spec["template"]["spec"]
    c = container(dep, "roost")
    admin = 5280
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"),
                        ("startupProbe", "/readyz")):
        hg = c[probe]["httpGet"]
        assert hg["path"] == path, probe
        assert port_number(c, hg["port"]) == admin, probe
    env = {e["name"]: e for e in c["env"]}
    assert env["ROOST_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    deadline = int(env["ROOST_DRAIN_DEADLINE_S"]["value"])
    # The grace period covers the drain plus the preStop sleep and cleanup.
    assert pod["terminationGracePeriodSeconds"] >= deadline + 10
    pre = " ".join(c["lifecycle"]["preStop"]["exec"]["command"])
    assert "roostctl node drain" in pre
    ann = spec["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert int(ann["prometheus.io/port"]) == admin
    assert ann["prometheus.io/path"] == "/metrics"
    sc, psc = c["securityContext"], pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["tls"]["secret"]["secretName"] == "roost-tls"
    assert vols["config"]["configMap"]["name"] == "roost-config"
    one("Secret", "roost-tls")
    assert one("Secret", "roost-tls")["type"] == "kubernetes.io/tls"


def test_services_and_pdb_select_the_pods():
    dep = one("Deployment", "roost")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    c = container(dep, "roost")
    svc = one("Service", "roost")
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    ports = {p["port"]: p for p in svc["spec"]["ports"]}
    assert set(ports) >= {5222, 5223}
    for p in ports.values():
        port_number(c, p["targetPort"])
    pdb = one("PodDisruptionBudget", "roost")
    sel = pdb["spec"]["selector"]["matchLabels"]
    assert all(labels.get(k) == v for k, v in sel.items())
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable")
    # The development Redis: AOF on, and the Service the config points at.
    redis = one("Deployment", "roost-redis")
    args = " ".join(container(redis, "redis")["args"])
    assert "--appendonly yes" in args
    rsvc = one("Service", "roost-redis")
    cfg = yaml.safe_load(one("ConfigMap", "roost-config")["data"]["roost.yaml"])
    assert cfg["redis"]["host"] == rsvc["metadata"]["name"]
    assert "Sentinel" in read("ops", "k8s", "redis-dev.yaml")


def node_bin():
    d = os.environ.get("ROOST_BIN") or os.path.join(REPO, "build", "bin")
    p = os.path.join(d, "roost-node")
    if not os.access(p, os.X_OK):
        pytest.skip("roost-node not built")
    return p


def test_configmap_config_is_valid(tmp_path):
    cfg = one("ConfigMap", "roost-config")["data"]["roost.yaml"]
    p = tmp_path / "roost.yaml"
    p.write_text(cfg)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    # The certificate exists only in the pod: validate everything else.
    r = subprocess.run([node_bin(), "--check-config", "-c", str(p), "--set", "tls.cert=",
                        "--set", "tls.key=", "--set", "c2s.require_encryption=false"],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    yml = yaml.safe_load(cfg)
    assert yml["admin"]["bind"] == "0.0.0.0" and yml["admin"]["port"] == 5280
    assert yml["c2s"]["require_encryption"] is True


def metric_names_in_code():
    names = set()
    for path in glob.glob(os.path.join(REPO, "node", "*.c")):
        with open(path) as f:
            text = f.read()
        names |= set(re.findall(r'roost_metric_(?:counter|gauge|histogram|gauge_fn)\(\s*"(roost_[a-z_]+)"',
                                text))
        names |= set(re.findall(r'\{ "(roost_[a-z_]+)", "', text))
    return names


OTHER_ISSUES = ["roost_limit_hits_total", "roost_sm_resumptions_total",
                "roost_sm_enabled_sessions", "roost_drain_remaining_connections",
                "roost_drain_released_total"]


def test_runbook_documents_every_metric():
    names = metric_names_in_code()
    assert {"roost_connections", "roost_sessions", "roost_logins_total",
            "roost_redis_latency_seconds", "roost_build_info"} <= names
    runbook = read("ops", "RUNBOOK.md")
    for n in sorted(names | set(OTHER_ISSUES)):
        assert "`%s" % n in runbook, "RUNBOOK.md does not describe %s" % n
    for section in ("## Deploy", "## Scale out and in", "rolling upgrade", "## Node failure",
                    "## Redis failure", "## Metrics", "## Alerts"):
        assert section.lower() in runbook.lower(), section


def test_prometheus_rules():
    with open(os.path.join(REPO, "ops", "prometheus", "roost-rules.yaml")) as f:
        rules = yaml.safe_load(f)
    runbook = read("ops", "RUNBOOK.md")
    known = metric_names_in_code() | set(OTHER_ISSUES) | {"up"}
    alerts = []
    for g in rules["groups"]:
        assert g["name"]
        for r in g["rules"]:
            assert r["alert"] and r["expr"]
            assert r["labels"]["severity"] in ("critical", "warning", "info")
            assert r["annotations"]["summary"]
            for m in re.findall(r"\b(roost_[a-z_]+?)(?:_bucket|_sum|_count)?\b", r["expr"]):
                assert m in known, (r["alert"], m)
            assert "`%s`" % r["alert"] in runbook, r["alert"]
            alerts.append(r["alert"])
    assert len(alerts) == len(set(alerts)) >= 5
    promtool = shutil.which("promtool")
    if promtool:
        r = subprocess.run([promtool, "check", "rules",
                            os.path.join(REPO, "ops", "prometheus", "roost-rules.yaml")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr


def test_example_config_documents_every_option():
    src = read("node", "config.c")
    keys = re.findall(r'\{ "([a-z0-9_.]+)", "ROOST_[A-Z0-9_]+", OPT_', src)
    assert "admin.port" in keys and "log.format" in keys
    example = yaml.safe_load(read("ops", "roost.example.yaml"))
    for k in keys:
        d = example
        for part in k.split("."):
            assert isinstance(d, dict) and part in d, "roost.example.yaml lacks %s" % k
            d = d[part]


SANDBOX = ["NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "ProtectHome=yes",
           "PrivateDevices=yes", "CapabilityBoundingSet=", "RestrictAddressFamilies=",
           "SystemCallFilter=", "MemoryDenyWriteExecute=yes"]


def test_systemd_unit(tmp_path):
    unit = read("ops", "roost-node.service")
    for d in SANDBOX:
        assert re.search(r"^%s" % re.escape(d), unit, re.M), d
    assert re.search(r"^ExecReload=/bin/kill -HUP \$MAINPID$", unit, re.M)
    tss = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M).group(1))
    assert tss >= 60
    sa = shutil.which("systemd-analyze")
    if not sa:
        return
    exe = node_bin()
    p = tmp_path / "roost-node.service"
    p.write_text(unit.replace("/usr/local/bin/roost-node", exe))
    r = subprocess.run([sa, "verify", str(p)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "roost-node.service" not in r.stderr, r.stderr


def test_docker_files():
    df = read("docker", "Dockerfile")
    assert re.search(r"^FROM \$\{BASE\} AS build$", df, re.M)
    assert "ARG BASE=roost/bookworm-slim" in df
    final = df.rsplit("\nFROM ", 1)[1]
    assert final.startswith("${BASE} AS node")
    assert re.search(r"^USER roost$", final, re.M)
    assert re.search(r"^HEALTHCHECK ", final, re.M)
    assert "debootstrap" in read("docker", "make-base.sh") and "docker import" in \
        read("docker", "make-base.sh")
    comp = yaml.safe_load(read("docker", "compose.yml"))
    svcs = comp["services"]
    assert {"redis", "node1", "node2", "node3", "haproxy"} <= set(svcs)
    assert "--appendonly" in svcs["redis"]["command"]
    assert svcs["redis"]["command"][svcs["redis"]["command"].index("--appendonly") + 1] == "yes"
    ids = {svcs["node%d" % i]["environment"]["ROOST_NODE_ID"] for i in (1, 2, 3)}
    assert len(ids) == 3
    hap = read("docker", "haproxy.cfg")
    assert "send-proxy-v2" in hap and "/readyz" in hap
    for i in (1, 2, 3):
        assert "server node%d node%d:5222" % (i, i) in hap
    mk = read("Makefile")
    assert re.search(r"^docker-test:", mk, re.M)
    test_line = re.search(r"^test: .*\n\t(.*)$", mk, re.M).group(1)
    assert "docker" not in test_line
