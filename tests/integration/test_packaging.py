#!/usr/bin/python3
"""The deployment artifacts in packaging/ are consistent with the daemon
(issue 16, items 4 and 5). Fast: one short-lived proxy pair on the mock.

- Every YAML file (packaging/k8s/*.yaml, packaging/prometheus/*.yml) parses
  (PyYAML, python3-yaml) and the Kubernetes objects hang together: each
  zone's Deployment is pinned to its zone (topology.kubernetes.io/zone) and
  tells render.sh the same zone, has a Service and a PodDisruptionBudget
  selecting its pods, probes /healthz on the config's admin port, and a
  termination grace period above drain_timeout_ms plus its preStop pause;
  the headless Service is the config's discovery.dns_name on its port; the
  Secret and ConfigMaps the pods name exist.
- Every configuration in packaging/ passes kzproxy --check-config: the
  example /etc/kzproxy/kzproxy.json, and each ConfigMap's template rendered
  by the ConfigMap's own render.sh with sample pod values. Every config key
  they set, and every config key the artifacts' comments name, is in the
  README's configuration reference.
- Every metric the Grafana dashboard and the Prometheus alert rules query is
  served by a running proxy's /metrics (two proxies in two zones with a WAL
  store and peers, a few messages produced so the counters appear); a family
  with labels counts when /metrics has its HELP line, and every label the
  queries select or group by is on one of its samples. The whole /metrics
  keeps the text format conventions (HELP and TYPE per family, counters
  named *_total).
- The systemd units pass `systemd-analyze verify` (ExecStart pointed at the
  built binary, any warning fails), have the hardening the issue asks for,
  and agree with the example config (listen "systemd", or fd:3, from the
  socket unit; TimeoutStopSec above drain_timeout_ms).
- The Containerfile (not built here: no container runtime) has the build
  and runtime stages, installs in the runtime stage a Debian package for
  every shared library the built kzproxy links directly, runs as a non-root
  user, exposes the config's ports and health-checks /healthz.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kzharness as kz  # noqa: E402
from kzharness import HarnessError  # noqa: E402

SECRET = 'kz-test-peer-secret-0123456789abcdef'
# Sample pod values for render.sh (IPv4 pod address, zone, hex secret).
POD = {'POD_IP': '10.20.30.40', 'PEER_SECRET': '00112233445566778899aabbccddeeff'}


def top(*parts):
    return os.path.join(kz.top_srcdir(), *parts)


def load_yaml_docs(path):
    import yaml
    with open(path) as f:
        try:
            return [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            raise HarnessError('%s: not valid YAML: %s' % (path, e))


def check_config_file(path, what):
    r = subprocess.run([kz.kzproxy_binary(), '--check-config', path], capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        raise HarnessError('%s: kzproxy --check-config failed: %s%s' % (what, r.stdout, r.stderr))
    return r.stdout.strip()


def flatten_keys(obj, prefix=''):
    """Dotted key paths of a config (array elements as key[]. ...)."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append(prefix + k)
            out += flatten_keys(v, prefix + k + '.')
    elif isinstance(obj, list):
        for v in obj:
            out += flatten_keys(v, prefix)
    return out


def readme_config_keys():
    """The keys of the README's configuration reference table, dotted, with
    rows like `wal.store.bucket`, `endpoint` expanded to wal.store.endpoint."""
    with open(top('README.md')) as f:
        text = f.read()
    start = text.index('## Configuration reference')
    end = text.index('\n## ', start + 10)
    keys = set()
    for line in text[start:end].splitlines():
        if not line.startswith('| `'):
            continue
        first = line.split('|')[1]
        names = re.findall(r'`([a-z_][a-z0-9_.]*)`', first)
        parent = ''
        for n in names:
            if '.' in n:
                parent = n.rsplit('.', 1)[0]
                keys.add(n)
            elif parent:
                keys.add(parent + '.' + n)
            else:
                keys.add(n)
    # A section is documented when one of its keys is.
    for k in list(keys):
        parts = k.split('.')
        for i in range(1, len(parts)):
            keys.add('.'.join(parts[:i]))
    return keys


def documented(key, keys):
    """key (dotted, array elements collapsed) is in the README: peers[] and
    client_zones[] entries are described in their own row."""
    if key in keys:
        return True
    head = key.split('.')[0]
    return head in ('peers', 'client_zones') and head in keys


# ------------------------------------------------------------ Kubernetes

def render(cm, tmp, zone, name):
    """Render a ConfigMap's kzproxy.json with render.sh (the fleet's) and check it."""
    render_sh = RENDER_SH[0]
    tdir = os.path.join(tmp, name)
    os.makedirs(tdir, exist_ok=True)
    with open(os.path.join(tdir, 'kzproxy.json'), 'w') as f:
        f.write(cm['data']['kzproxy.json'])
    with open(os.path.join(tdir, 'render.sh'), 'w') as f:
        f.write(render_sh)
    out = os.path.join(tdir, 'rendered.json')
    env = dict(os.environ, ZONE=zone, KZ_RENDERED=out, KZPROXY=kz.kzproxy_binary(),
               KZ_TEMPLATE=os.path.join(tdir, 'kzproxy.json'), **POD)
    r = subprocess.run(['/bin/sh', os.path.join(tdir, 'render.sh')], env=env, capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        raise HarnessError('ConfigMap %s: render.sh + --check-config failed: %s%s' % (name, r.stdout, r.stderr))
    with open(out) as f:
        cfg = json.load(f)
    a, b, c, d = (int(x) for x in POD['POD_IP'].split('.'))
    want_id = ((a << 24) | (b << 16) | (c << 8) | d) & 0x7FFFFFFF
    if cfg['node_id'] != want_id or cfg['zone'] != zone or cfg.get('peer_secret') != POD['PEER_SECRET']:
        raise HarnessError('ConfigMap %s: render.sh filled node_id %r zone %r, want %d and %s'
                           % (name, cfg['node_id'], cfg['zone'], want_id, zone))
    print('  ConfigMap %s rendered for zone %s: %s' % (name, zone, r.stdout.strip().splitlines()[-1]))
    return cfg


RENDER_SH = []


def port_of(hostport):
    return int(hostport.rsplit(':', 1)[1])


def containers(pod):
    return list(pod.get('initContainers', [])) + list(pod.get('containers', []))


def kzproxy_container(pod, where):
    for c in containers(pod):
        if c.get('args', [])[:1] == ['--config'] and str(c.get('image', '')).startswith('kzproxy'):
            return c
    raise HarnessError('%s: no kzproxy container (image kzproxy..., args --config ...)' % where)


def zone_of_affinity(pod, where):
    terms = pod['affinity']['nodeAffinity']['requiredDuringSchedulingIgnoredDuringExecution']['nodeSelectorTerms']
    for t in terms:
        for e in t.get('matchExpressions', []):
            if e['key'] == 'topology.kubernetes.io/zone' and e['operator'] == 'In' and len(e['values']) == 1:
                return e['values'][0]
    raise HarnessError('%s: no required node affinity on topology.kubernetes.io/zone In [one zone]' % where)


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def check_pod(pod, where, cfg, drain_ms, objects):
    zone = zone_of_affinity(pod, where)
    render_c = [c for c in pod.get('initContainers', []) if 'render.sh' in ' '.join(c.get('command', []))]
    if len(render_c) != 1:
        raise HarnessError('%s: want one init container running render.sh' % where)
    env = {e['name']: e for e in render_c[0].get('env', [])}
    if env.get('ZONE', {}).get('value') != zone:
        raise HarnessError('%s: render.sh gets ZONE %r, the node affinity says %s'
                           % (where, env.get('ZONE', {}).get('value'), zone))
    if env.get('POD_IP', {}).get('valueFrom', {}).get('fieldRef', {}).get('fieldPath') != 'status.podIP':
        raise HarnessError('%s: POD_IP must come from status.podIP' % where)
    ref = env.get('PEER_SECRET', {}).get('valueFrom', {}).get('secretKeyRef', {})
    sec = objects.get(('Secret', ref.get('name')))
    if sec is None or ref.get('key') not in sec.get('stringData', {}) and ref.get('key') not in sec.get('data', {}):
        raise HarnessError('%s: PEER_SECRET names Secret %r key %r, which the manifests do not define'
                           % (where, ref.get('name'), ref.get('key')))
    for v in pod.get('volumes', []):
        if 'configMap' in v and ('ConfigMap', v['configMap']['name']) not in objects:
            raise HarnessError('%s: volume %s names ConfigMap %s, not defined' % (where, v['name'], v['configMap']['name']))
    c = kzproxy_container(pod, where)
    admin_port = port_of(cfg['admin_listen'])
    ports = {p.get('name'): p['containerPort'] for p in c.get('ports', [])}
    probes = [k for k in ('readinessProbe', 'livenessProbe', 'startupProbe') if k in c]
    for k in ('readinessProbe', 'livenessProbe'):
        if k not in c:
            raise HarnessError('%s: kzproxy container has no %s' % (where, k))
    for k in probes:
        hg = c[k].get('httpGet', {})
        port = ports.get(hg.get('port'), hg.get('port'))
        if hg.get('path') != '/healthz' or port != admin_port:
            raise HarnessError('%s: %s is %r on port %r, want /healthz on the admin port %d'
                               % (where, k, hg.get('path'), port, admin_port))
    if not cfg['admin_listen'].startswith('0.0.0.0:'):
        raise HarnessError('%s: admin_listen %s: the kubelet probes the pod address' % (where, cfg['admin_listen']))
    if 'kafka' in ports and ports['kafka'] != port_of(cfg['listen']):
        raise HarnessError('%s: containerPort kafka %d, listen says %s' % (where, ports['kafka'], cfg['listen']))
    grace = pod.get('terminationGracePeriodSeconds', 30)
    pre = c.get('lifecycle', {}).get('preStop', {}).get('exec', {}).get('command', [])
    pause = int(pre[-1]) if pre and pre[0].endswith('sleep') else 0
    if grace * 1000 <= drain_ms + pause * 1000:
        raise HarnessError('%s: terminationGracePeriodSeconds %d is not above drain_timeout_ms %d + preStop %d s'
                           % (where, grace, drain_ms, pause))
    sc = c.get('securityContext', {})
    if not pod.get('securityContext', {}).get('runAsNonRoot') or sc.get('allowPrivilegeEscalation') is not False \
            or 'ALL' not in sc.get('capabilities', {}).get('drop', []):
        raise HarnessError('%s: want runAsNonRoot, allowPrivilegeEscalation false, capabilities drop ALL' % where)
    return zone


def template_configmap(pod, where, objects):
    """The ConfigMap render.sh reads its template from: the file KZ_TEMPLATE
    names, else kzproxy.json beside render.sh; found through the mounts."""
    rc = [c for c in pod.get('initContainers', []) if 'render.sh' in ' '.join(c.get('command', []))]
    if len(rc) != 1:
        raise HarnessError('%s: want one init container running render.sh' % where)
    env = {e['name']: e.get('value') for e in rc[0].get('env', [])}
    path = env.get('KZ_TEMPLATE') or os.path.join(os.path.dirname(rc[0]['command'][-1]), 'kzproxy.json')
    vols = {v['name']: v for v in pod.get('volumes', [])}
    for m in rc[0].get('volumeMounts', []):
        if os.path.dirname(path) == m['mountPath'].rstrip('/'):
            name = vols[m['name']].get('configMap', {}).get('name')
            cm = objects.get(('ConfigMap', name))
            if cm is None or os.path.basename(path) not in cm['data']:
                raise HarnessError('%s: render.sh reads %s, which ConfigMap %r does not hold' % (where, path, name))
            return cm
    raise HarnessError('%s: render.sh reads %s, which no volume mount provides' % (where, path))


def drain_timeout_ms(cfg):
    """The config's drain_timeout_ms, else the README's default, else None
    (the key is not in this build)."""
    if 'drain_timeout_ms' in cfg:
        return cfg['drain_timeout_ms']
    with open(top('README.md')) as f:
        for line in f:
            if line.startswith('| `drain_timeout_ms`'):
                m = re.search(r'\d+', line.split('|')[3])  # | key | type | default | meaning |
                if m:
                    return int(m.group(0))
    return None


def check_k8s():
    import yaml  # noqa: F401  (PyYAML present: load_yaml_docs needs it)
    objects, docs = {}, []
    for path in sorted(glob.glob(top('packaging', 'k8s', '*.yaml'))):
        for d in load_yaml_docs(path):
            if 'kind' not in d or 'apiVersion' not in d:
                raise HarnessError('%s: a document without kind/apiVersion' % path)
            name = d.get('metadata', {}).get('name')
            objects[(d['kind'], name)] = d
            docs.append((os.path.basename(path), d))
    print('k8s: %d objects in %d files: %s' % (len(docs), len({f for f, _ in docs}),
                                               ', '.join(sorted({d['kind'] for _, d in docs}))))
    kust = objects.get(('Kustomization', None))
    if kust:
        for r in kust['resources']:
            if not os.path.exists(top('packaging', 'k8s', r)):
                raise HarnessError('kustomization.yaml: resource %s does not exist' % r)
    fleet_cm = objects.get(('ConfigMap', 'kzproxy-config'))
    if fleet_cm is None or 'render.sh' not in fleet_cm['data']:
        raise HarnessError('k8s: no ConfigMap kzproxy-config with kzproxy.json and render.sh')
    RENDER_SH.append(fleet_cm['data']['render.sh'])
    tmp = tempfile.mkdtemp(prefix='kz-pkg-')
    configs = {}
    try:
        deployments = [d for _, d in docs if d['kind'] in ('Deployment', 'DaemonSet')]
        zones = {}
        for dep in deployments:
            where = '%s %s' % (dep['kind'], dep['metadata']['name'])
            pod = dep['spec']['template']['spec']
            labels = dep['spec']['template']['metadata']['labels']
            if not selects(dep['spec']['selector']['matchLabels'], labels):
                raise HarnessError('%s: its selector does not select its own pods' % where)
            cm = template_configmap(pod, where, objects)
            zone = zone_of_affinity(pod, where)
            cfg = render(cm, tmp, zone, '%s-%s' % (cm['metadata']['name'], zone))
            configs['%s (%s)' % (cm['metadata']['name'], zone)] = cfg
            drain = drain_timeout_ms(cfg)
            if drain is None:
                print('  note: %s sets no drain_timeout_ms and the README gives no default: its grace '
                      'period is checked against 30000 ms' % where)
                drain = 30000
            check_pod(pod, where, cfg, drain, objects)
            if dep['metadata']['name'] == 'billing-producer':
                continue  # the sidecar example: no Service or PDB of its own
            zones[zone] = (where, labels, cfg)
        if len(zones) < 2:
            raise HarnessError('k8s: proxy Deployments for %d zones, want one per zone (at least 2)' % len(zones))
        services = [d for _, d in docs if d['kind'] == 'Service']
        pdbs = [d for _, d in docs if d['kind'] == 'PodDisruptionBudget']
        for zone, (where, labels, cfg) in zones.items():
            zs = [s for s in services if s['spec'].get('clusterIP') != 'None' and selects(s['spec']['selector'], labels)]
            if len(zs) != 1 or zs[0]['spec']['selector'].get('kzproxy.io/zone') != zone:
                raise HarnessError('%s: want exactly one Service for zone %s selecting its pods, got %s'
                                   % (where, zone, [s['metadata']['name'] for s in zs]))
            if not any(selects(p['spec']['selector']['matchLabels'], labels) and
                       p['spec']['selector']['matchLabels'].get('kzproxy.io/zone') == zone for p in pdbs):
                raise HarnessError('%s: no PodDisruptionBudget for zone %s' % (where, zone))
            disc = cfg.get('discovery')
            if not disc:
                raise HarnessError('%s: the config has no discovery section' % where)
            svc_name, ns = disc['dns_name'].split('.')[:2]
            hs = objects.get(('Service', svc_name))
            if hs is None or hs['spec'].get('clusterIP') != 'None' or hs['metadata'].get('namespace') != ns:
                raise HarnessError('%s: discovery.dns_name %s is not a headless Service in namespace %s'
                                   % (where, disc['dns_name'], ns))
            if not selects(hs['spec']['selector'], labels):
                raise HarnessError('%s: the headless Service %s does not select its pods' % (where, svc_name))
            if disc['port'] not in [p['port'] for p in hs['spec']['ports']] or disc['port'] != port_of(cfg['listen']):
                raise HarnessError('%s: discovery.port %d is not the Kafka port of Service %s and listen'
                                   % (where, disc['port'], svc_name))
        print('k8s: zones %s: Deployment, Service, PodDisruptionBudget, headless Service %s, probes, grace period: ok'
              % (', '.join(sorted(zones)), svc_name))
        if not os.path.exists(top('packaging', 'k8s', 'sidecar-example.yaml')):
            raise HarnessError('packaging/k8s/sidecar-example.yaml is missing')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return configs


# ------------------------------------------------------------ configuration keys

# Comments and text in the artifacts may name config keys; these are the
# words that are config keys when they appear (snake_case ending like one).
KEYISH = re.compile(r'\b((?:[a-z]+_)+(?:ms|bytes|secret|listen|level|format|policy|name|servers|uploads)'
                    r'(?:\.[a-z_]+)*|(?:wal|discovery|limits|prices|backend)\.[a-z_.]*[a-z])\b')
NOT_KEYS = {'kzproxy_xzone_bytes', 'sizeLimit'}


def key_exists(path, base):
    """Ask the daemon whether a dotted config key exists: put an object
    where its value goes in a config that passes --check-config and look at
    the error. The parser rejects unknown keys before reading values, so an
    unknown key gives "<key>: unknown key" and a known one any other error."""
    cfg = json.loads(json.dumps(base))
    parts = path.split('.')
    node = cfg
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = {'kz_probe': 1}
    fd, tmp = tempfile.mkstemp(prefix='kz-probe-', suffix='.json')
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(cfg, f)
        r = subprocess.run([kz.kzproxy_binary(), '--check-config', tmp], capture_output=True, text=True,
                           timeout=30)
    finally:
        os.unlink(tmp)
    return '%s: unknown key' % path not in r.stdout + r.stderr


def check_config_keys(configs):
    keys = readme_config_keys()
    for what, cfg in configs.items():
        for k in flatten_keys(cfg):
            if not documented(k, keys):
                raise HarnessError('%s: key %s is not in the README configuration reference' % (what, k))
    mentioned = set()
    files = (glob.glob(top('packaging', 'k8s', '*.yaml')) + glob.glob(top('packaging', 'systemd', '*')) +
             [top('packaging', 'container', 'Containerfile')] + glob.glob(top('packaging', 'prometheus', '*.yml')) +
             glob.glob(top('debian', '*')))
    for path in files:
        if os.path.isdir(path):
            continue
        with open(path) as f:
            text = f.read()
        # Comment lines name keys in prose; the embedded configs are checked
        # above, key by key. Alert annotations are prose too.
        prose = [ln for ln in text.splitlines() if ln.lstrip().startswith('#')]
        if path.endswith('.yml'):
            for doc in load_yaml_docs(path):
                for g in doc['groups']:
                    for r in g['rules']:
                        prose += list(r.get('annotations', {}).values())
        for m in KEYISH.finditer('\n'.join(prose)):
            w = m.group(1)
            if w.startswith('kzproxy_') or w in NOT_KEYS or w.upper() == w:
                continue
            mentioned.add((w, os.path.relpath(path, top())))
    base = next(c for w, c in configs.items() if w.startswith('kzproxy-config'))
    missing = sorted((w, p) for w, p in mentioned if not key_exists(w, base))
    if missing:
        raise HarnessError('config keys named in packaging files that kzproxy --check-config does not know: %s'
                           % ', '.join('%s (%s)' % b for b in missing))
    bad = sorted((w, p) for w, p in mentioned if not documented(w, keys))
    if bad:
        raise HarnessError('config keys named in packaging files but not in the README reference: %s'
                           % ', '.join('%s (%s)' % b for b in bad))
    print('config keys: %d configs, %d keys set, %d key names in comments: all known to kzproxy and in the '
          'README reference'
          % (len(configs), len({k for c in configs.values() for k in flatten_keys(c)}),
             len({w for w, _ in mentioned})))


# ------------------------------------------------------------ metrics

METRIC = re.compile(r'\b(kzproxy_[a-z0-9_]+)\b')
PROMQL_WORDS = {'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless',
                'le', 'bool', 'offset'}


def dashboard_exprs():
    with open(top('packaging', 'grafana', 'kzproxy-dashboard.json')) as f:
        dash = json.load(f)
    exprs = []
    for p in dash.get('panels', []):
        if p.get('type') == 'row':
            continue
        if not p.get('targets'):
            raise HarnessError('dashboard panel %r has no query' % p.get('title'))
        for t in p['targets']:
            exprs.append(('dashboard panel %r' % p.get('title'), t['expr']))
    for v in dash.get('templating', {}).get('list', []):
        if v.get('type') == 'query':
            q = v['query']['query'] if isinstance(v['query'], dict) else v['query']
            exprs.append(('dashboard variable %r' % v['name'], q))
    if not dash.get('uid') or not dash.get('title'):
        raise HarnessError('dashboard: no uid or title')
    return dash, exprs


def alert_exprs():
    rules = []
    for path in sorted(glob.glob(top('packaging', 'prometheus', '*.yml'))):
        for doc in load_yaml_docs(path):
            for g in doc['groups']:
                for r in g['rules']:
                    if 'alert' not in r or 'expr' not in r:
                        raise HarnessError('%s: a rule without alert/expr: %r' % (path, r))
                    for k in ('summary', 'description'):
                        if k not in r.get('annotations', {}):
                            raise HarnessError('%s: alert %s has no %s annotation' % (path, r['alert'], k))
                    if r.get('labels', {}).get('severity') not in ('critical', 'warning', 'info'):
                        raise HarnessError('%s: alert %s: severity label missing' % (path, r['alert']))
                    rules.append(('alert %s' % r['alert'], r['expr']))
    return rules


PROMQL_FUNCS = {'rate', 'irate', 'increase', 'sum', 'min', 'max', 'avg', 'count', 'histogram_quantile',
                'vector', 'label_values', 'topk', 'abs', 'clamp_min', 'delta', 'deriv'}
PROMQL_KEYWORDS = {'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool'}


def promql_lint(where, expr):
    """A small syntax check (no promtool here): brackets balance, every
    call is a known function, range selectors follow a selector and hold a
    duration, label matchers are name op "value"."""
    stack, pairs = [], {')': '(', ']': '[', '}': '{'}
    in_str = False
    for ch in expr:
        if ch == '"':
            in_str = not in_str
        elif in_str:
            continue
        elif ch in '([{':
            stack.append(ch)
        elif ch in ')]}':
            if not stack or stack.pop() != pairs[ch]:
                raise HarnessError('%s: unbalanced %r in %s' % (where, ch, expr))
    if stack or in_str:
        raise HarnessError('%s: unclosed %r in %s' % (where, stack or '"', expr))
    for m in re.finditer(r'\b([a-zA-Z_][a-zA-Z0-9_]*)\s*\(', expr):
        if m.group(1) not in PROMQL_FUNCS | PROMQL_KEYWORDS:
            raise HarnessError('%s: unknown function %s in %s' % (where, m.group(1), expr))
    for m in re.finditer(r'\[([^\]]*)\]', expr):
        if not re.fullmatch(r'\d+[smhd]|\$__rate_interval|\$__interval', m.group(1)):
            raise HarnessError('%s: range [%s] is not a duration in %s' % (where, m.group(1), expr))
        before = expr[:m.start()].rstrip()
        if not re.search(r'(\}|[a-z0-9_])$', before):
            raise HarnessError('%s: range [%s] does not follow a selector in %s' % (where, m.group(1), expr))
    for m in re.finditer(r'\{([^}]*)\}', expr):
        for item in [x.strip() for x in m.group(1).split(',') if x.strip()]:
            if not re.fullmatch(r'[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"[^"]*"', item):
                raise HarnessError('%s: bad label matcher %r in %s' % (where, item, expr))


def promtool_check(rules_path, queries):
    """With promtool on PATH (Debian's prometheus package): check the alert
    rules and every dashboard query (as recording rules). Returns what it did."""
    tool = shutil.which('promtool')
    if tool is None:
        return 'promtool not installed: PromQL checked by the small linter only'
    import yaml
    r = subprocess.run([tool, 'check', 'rules', rules_path], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise HarnessError('promtool check rules %s: %s%s' % (rules_path, r.stdout, r.stderr))
    rec = {'groups': [{'name': 'dashboard', 'rules': [
        {'record': 'kz:dashboard:%d' % i,
         'expr': e.replace('$__rate_interval', '5m').replace('$instance', '.*').replace('$zone', '.*')}
        for i, (w, e) in enumerate(queries) if not e.startswith('label_values(')]}]}
    fd, tmp = tempfile.mkstemp(prefix='kz-dash-rules-', suffix='.yml')
    try:
        with os.fdopen(fd, 'w') as f:
            yaml.safe_dump(rec, f)
        r = subprocess.run([tool, 'check', 'rules', tmp], capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(tmp)
    if r.returncode != 0:
        raise HarnessError('promtool check rules (dashboard queries): %s%s' % (r.stdout, r.stderr))
    return 'promtool check rules: alert rules and dashboard queries valid'


def selector_labels(expr, name):
    """Label names in {...} right after name, and in by(...)/without(...) clauses."""
    out = set()
    for m in re.finditer(re.escape(name) + r'\{([^}]*)\}', expr):
        out |= set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!=|!~|=)', m.group(1)))
    return out


def scrape():
    """A proxy in zone a and one in zone b with a local WAL store; produce to
    partitions led in both zones through the zone-a proxy so the WAL path,
    the object store and the peer RPC all count. Returns the zone-a
    proxy's /metrics text."""
    workdir = tempfile.mkdtemp(prefix='kz-pkg-metrics-')
    try:
        extra = {'peer_secret': SECRET,
                 'wal': {'store': {'backend': 'local', 'root': os.path.join(workdir, 'wal'), 'no_fsync': True},
                         'flush_ms': 20}}
        with kz.TestBed(zones=('a', 'b'), brokers=2, topics={'pkg4': 4}) as tb, \
                kz.ProxyCluster(tb, zones=('a', 'b'), extra_config=extra, workdir=workdir) as pc:
            a = pc.proxy_in('a')
            kz.produce(a.kafka, 'pkg4', [(b'k%d' % i, b'v' * 100) for i in range(40)],
                       config={'client.id': 'kz-test-packaging', 'acks': 'all'}, timeout=60)
            kz.wait_until(lambda: pc.metrics(a).sum('kzproxy_wal_partitions_total', 0) > 0, 20,
                          'the zone-a proxy to send partitions on the WAL path')
            with urllib.request.urlopen('http://%s/metrics' % a.admin, timeout=5) as r:
                return r.read().decode('utf-8')
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def check_metrics(text, queries):
    helps, types, samples = {}, {}, {}
    for line in text.splitlines():
        if line.startswith('# HELP '):
            name = line.split()[2]
            if name in helps:
                raise HarnessError('/metrics: two HELP lines for %s' % name)
            helps[name] = line
        elif line.startswith('# TYPE '):
            _, _, name, typ = line.split()[:4]
            types[name] = typ
        elif line and not line.startswith('#'):
            m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s', line)
            if not m:
                raise HarnessError('/metrics: bad line %r' % line)
            labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3) or ''))
            samples.setdefault(m.group(1), set()).update(labels)
    # The format's conventions.
    for name, typ in types.items():
        if name not in helps:
            raise HarnessError('/metrics: %s has TYPE but no HELP' % name)
        if typ == 'counter' and not name.endswith('_total'):
            raise HarnessError('/metrics: counter %s is not named *_total' % name)
    for name in helps:
        if name not in types:
            raise HarnessError('/metrics: %s has HELP but no TYPE' % name)
    for s in samples:
        fam = re.sub(r'_(bucket|sum|count)$', '', s) if s not in helps else s
        if fam not in helps:
            raise HarnessError('/metrics: sample %s has no HELP/TYPE' % s)
    used = {}
    for where, expr in queries:
        for name in METRIC.findall(expr):
            fam = name
            if fam not in helps:
                base = re.sub(r'_(bucket|sum|count)$', '', name)
                if base in helps and types.get(base) == 'histogram':
                    fam = base
                else:
                    raise HarnessError('%s queries %s, which a running proxy does not serve in /metrics'
                                       % (where, name))
            for lab in selector_labels(expr, name) - {'le', 'instance', 'job'}:
                if lab not in samples.get(name, set()):
                    raise HarnessError('%s selects label %s of %s: no sample of it has that label'
                                       % (where, lab, name))
            used.setdefault(fam, []).append(where)
        for m in re.finditer(r'\b(?:by|without)\s*\(([^)]*)\)', expr):
            names = METRIC.findall(expr)
            for lab in [x.strip() for x in m.group(1).split(',') if x.strip()]:
                if lab in ('le', 'instance', 'job') or lab in PROMQL_WORDS:
                    continue
                if not any(lab in samples.get(n, set()) for n in names):
                    raise HarnessError('%s groups by %s, a label none of %s has' % (where, lab, names))
    print('metrics: %d queries use %d metric families, all served by /metrics (%d families there)'
          % (len(queries), len(used), len(helps)))
    return used


# ------------------------------------------------------------ systemd

SERVICE_NEEDS = {
    'User': 'kzproxy', 'ProtectSystem': 'strict', 'ProtectHome': 'yes', 'NoNewPrivileges': 'yes',
    'PrivateTmp': 'yes', 'CapabilityBoundingSet': '', 'LimitNOFILE': None, 'RestrictAddressFamilies': None,
    'ExecReload': '/bin/kill -HUP $MAINPID', 'TimeoutStopSec': None,
}


def parse_unit(path):
    """A strict reading of a unit file: [Section] headers, Key=Value lines,
    comments; anything else is an error. Returns {section: [(key, value)]}."""
    out, sect = {}, None
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip('\n')
            if not line.strip() or line.lstrip().startswith(('#', ';')):
                continue
            m = re.match(r'^\[([A-Za-z]+)\]$', line)
            if m:
                sect = m.group(1)
                out.setdefault(sect, [])
                continue
            m = re.match(r'^([A-Za-z][A-Za-z0-9]*)=(.*)$', line)
            if not m or sect is None:
                raise HarnessError('%s:%d: not a unit file line: %r' % (path, n, line))
            out[sect].append((m.group(1), m.group(2).strip()))
    return out


def check_units(example_cfg):
    sysd = top('packaging', 'systemd')
    svc = parse_unit(os.path.join(sysd, 'kzproxy.service'))
    sock = parse_unit(os.path.join(sysd, 'kzproxy.socket'))
    s = {}
    for k, v in svc.get('Service', []):
        s.setdefault(k, v)
    for k, want in SERVICE_NEEDS.items():
        if k not in s:
            raise HarnessError('kzproxy.service: no %s=' % k)
        if want is not None and s[k] != want:
            raise HarnessError('kzproxy.service: %s=%s, want %s' % (k, s[k], want))
    drain = drain_timeout_ms(example_cfg)
    if drain is None:
        drain = 30000
    m = re.match(r'^(\d+)s?$', s['TimeoutStopSec'])
    if not m or int(m.group(1)) * 1000 <= drain:
        raise HarnessError('kzproxy.service: TimeoutStopSec=%s is not above drain_timeout_ms %d' % (s['TimeoutStopSec'], drain))
    if ('Requires', 'kzproxy.socket') not in svc['Unit']:
        raise HarnessError('kzproxy.service: does not require kzproxy.socket')
    listens = [v for k, v in sock['Socket'] if k == 'ListenStream']
    if len(listens) != 1 or example_cfg['listen'] not in ('systemd', 'fd:3'):
        raise HarnessError('kzproxy.socket has %d ListenStream, the example config listens on %s: '
                           'want one socket, handed over as descriptor 3 ("systemd" or fd:3)'
                           % (len(listens), example_cfg['listen']))
    if port_of('x:' + listens[0].split(':')[-1]) != port_of(example_cfg['advertised']):
        raise HarnessError('kzproxy.socket listens on %s, the example config advertises %s'
                           % (listens[0], example_cfg['advertised']))
    tool = shutil.which('systemd-analyze')
    tmp = tempfile.mkdtemp(prefix='kz-units-')
    try:
        for name in ('kzproxy.service', 'kzproxy.socket'):
            with open(os.path.join(sysd, name)) as f:
                text = f.read()
            with open(os.path.join(tmp, name), 'w') as f:
                f.write(text.replace('/usr/bin/kzproxy', kz.kzproxy_binary()))
        if tool is None:
            print('systemd: systemd-analyze is not installed (scripts/deps.sh installs systemd): the units were '
                  'checked by the strict line parser and the directive checks above only')
            return
        r = subprocess.run([tool, 'verify', os.path.join(tmp, 'kzproxy.socket'), os.path.join(tmp, 'kzproxy.service')],
                           capture_output=True, text=True, timeout=60)
        out = (r.stdout + r.stderr).strip()
        # Offline verification needs no running systemd; if the tool itself
        # cannot work here, say so instead of passing.
        if r.returncode != 0 and re.search(r'Failed to (?:initialize|setup|create) manager|'
                                           r'System has not been booted|Operation not permitted', out):
            print('systemd: systemd-analyze verify cannot run in this container (%s): the units were checked by '
                  'the strict line parser and the directive checks above only' % out.splitlines()[0])
            return
        if r.returncode != 0 or out:
            raise HarnessError('systemd-analyze verify: exit %d: %s' % (r.returncode, out))
        print('systemd: systemd-analyze verify kzproxy.socket kzproxy.service: clean; hardening directives present')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------ container

SANITIZER_RUNTIME = re.compile(r'^lib(asan|ubsan|tsan|lsan|hwasan)\.so')


def direct_libs_packages(binary):
    """The Debian packages of the shared libraries binary links directly."""
    r = subprocess.run(['objdump', '-p', binary], capture_output=True, text=True, check=True)
    needed = re.findall(r'^\s*NEEDED\s+(\S+)', r.stdout, re.M)
    ld = subprocess.run(['ldconfig', '-p'], capture_output=True, text=True, check=True).stdout
    pkgs = {}
    for lib in needed:
        if SANITIZER_RUNTIME.match(lib):
            continue  # a --enable-sanitizers build; the image builds without them
        m = re.search(r'^\s*%s \([^)]*x86-64[^)]*\) => (\S+)' % re.escape(lib), ld, re.M) or \
            re.search(r'^\s*%s \(.*\) => (\S+)' % re.escape(lib), ld, re.M)
        if not m:
            raise HarnessError('%s links %s, which ldconfig does not know' % (binary, lib))
        path = os.path.realpath(m.group(1))
        d = subprocess.run(['dpkg', '-S', path], capture_output=True, text=True)
        if d.returncode != 0:
            d = subprocess.run(['dpkg', '-S', m.group(1)], capture_output=True, text=True)
        if d.returncode != 0:
            raise HarnessError('%s: no Debian package owns %s' % (lib, path))
        pkgs[lib] = d.stdout.split(':')[0]
    return pkgs


def check_containerfile(example):
    path = top('packaging', 'container', 'Containerfile')
    with open(path) as f:
        text = f.read()
    lines = [ln for ln in re.sub(r'\\\n', ' ', text).splitlines() if ln.strip() and not ln.lstrip().startswith('#')]
    froms = [ln.split()[1:] for ln in lines if ln.startswith('FROM ')]
    if len(froms) < 2 or froms[0][0] != 'debian:12' or froms[-1][0] != 'debian:12-slim':
        raise HarnessError('Containerfile: want a debian:12 build stage and a debian:12-slim runtime stage, got %s' % froms)
    runtime = text[text.rindex('FROM debian:12-slim'):]
    if re.search(r'\b(build-essential|-dev)\b', runtime):
        raise HarnessError('Containerfile: the runtime stage installs build packages')
    pkgs = direct_libs_packages(kz.kzproxy_binary())
    missing = sorted({p for p in pkgs.values() if p != 'libc6' and not re.search(r'\b%s\b' % re.escape(p), runtime)})
    if missing:
        raise HarnessError('Containerfile: the runtime stage does not install %s (libraries kzproxy links)' % missing)
    users = [ln.split()[1] for ln in lines if ln.startswith('USER ')]
    if not users or users[-1].split(':')[0] in ('0', 'root'):
        raise HarnessError('Containerfile: the runtime stage does not run as a non-root USER')
    hc = [ln for ln in lines if ln.startswith('HEALTHCHECK ')]
    expose = {int(p.split('/')[0]) for ln in lines if ln.startswith('EXPOSE ') for p in ln.split()[1:]}
    cm = example
    admin, kafka = port_of(cm['admin_listen']), port_of(cm['listen'])
    if not hc or '/healthz' not in hc[0] or ':%d/' % admin not in hc[0]:
        raise HarnessError('Containerfile: HEALTHCHECK must GET /healthz on the admin port %d: %s' % (admin, hc))
    if not {admin, kafka} <= expose:
        raise HarnessError('Containerfile: EXPOSE %s, want the Kafka port %d and the admin port %d'
                           % (sorted(expose), kafka, admin))
    if 'curl' in hc[0] and not re.search(r'\bcurl\b', runtime.split('HEALTHCHECK')[0]):
        raise HarnessError('Containerfile: HEALTHCHECK uses curl, which the runtime stage does not install')
    print('container: checked, not built (no container runtime here): stages %s, runtime packages cover %s, '
          'USER %s, HEALTHCHECK /healthz on %d, EXPOSE %s'
          % (' -> '.join(f[0] for f in froms), ', '.join(sorted(set(pkgs.values()) - {'libc6'})), users[-1],
             admin, ' '.join(str(p) for p in sorted(expose))))


def main():
    try:
        import yaml  # noqa: F401
    except ImportError:
        raise HarnessError('PyYAML is missing under %s: apt-get install python3-yaml (scripts/deps.sh)' % sys.executable)
    if not os.path.exists(kz.kzproxy_binary()):
        raise HarnessError('no kzproxy binary at %s' % kz.kzproxy_binary())
    example = top('packaging', 'config', 'kzproxy.json')
    print('example config: %s' % check_config_file(example, 'packaging/config/kzproxy.json'))
    with open(example) as f:
        example_cfg = json.load(f)
    configs = check_k8s()
    configs['packaging/config/kzproxy.json'] = example_cfg
    check_config_keys(configs)
    fleet = next(c for w, c in configs.items() if w.startswith('kzproxy-config'))
    check_containerfile(fleet)
    check_units(example_cfg)
    dash, dq = dashboard_exprs()
    aq = alert_exprs()
    for where, expr in dq + aq:
        promql_lint(where, expr)
    print('promql: %d queries pass the linter; %s'
          % (len(dq) + len(aq), promtool_check(top('packaging', 'prometheus', 'kzproxy-alerts.yml'),
                                               [q for q in dq if q[0].startswith('dashboard panel')])))
    print('dashboard %r: %d panels, %d queries; alert rules: %d' % (dash['title'], len(dash['panels']), len(dq), len(aq)))
    text = scrape()
    check_metrics(text, dq + aq)


if __name__ == '__main__':
    kz.run_test(main, timeout=180)
