"""The S3 cache plugin against moto's real server on 127.0.0.1 (boto3 speaks HTTP to it)."""

from __future__ import annotations

import json
import subprocess

from conftest_s3 import CREDS, S3, Server
from qik.testing import Project
from shared import REMOTE_BUILD, warnings, wipe

pytest_plugins = ["conftest_s3"]




def setup(p: Project, url: str, bucket: str, *, top: str = "", opts: str = "", cmds: str = REMOTE_BUILD) -> None:
    p.env.update(CREDS)
    p.write("qik.toml", f"{top}\n[plugins]\ns3 = \"qik.s3\"\n\n[caches.remote]\ntype = \"s3\"\n"
            f"bucket = \"{bucket}\"\nprefix = \"team/cache\"\nendpoint-url = \"{url}\"\n{opts}\n{cmds}")
    p.write("src/a.txt", "alpha\n")
    p.write(".gitignore", "out/\n")
    p.commit()






def test_populate_then_hit_after_deleting_local(qik_project: Project, s3: S3) -> None:
    p = qik_project
    setup(p, s3.url, s3.bucket)
    first = p.qik()
    assert first.ok and "1 ran" in first.err, first.text
    keys = s3.names()
    blobs = [k for k in keys if k.startswith("team/cache/blobs/")]
    manifests = [k for k in keys if k.startswith("team/cache/build/") and k.endswith(".json")]
    assert len(blobs) == 1 and len(manifests) == 1, keys
    assert not any(str(p.root) in k or "/tmp" in k for k in keys)  # no absolute paths
    assert b"/tmp" not in s3.get(manifests[0])

    wipe(p)
    again = p.qik()
    assert again.ok and "1 cached" in again.err, again.text
    assert "built it" in again.out  # the log is replayed
    assert p.read("out/all.txt") == "alpha\n"
    assert not warnings(again.err)

    stats = {r["cache"]: r for r in p.qik(":cache", "stats", "--remote", "--json").json()}
    assert stats["remote"]["type"] == "s3" and stats["remote"]["entries"] == 1


def test_second_checkout_in_another_folder_hits(qik_project: Project, s3: S3, tmp_path) -> None:
    p = qik_project
    setup(p, s3.url, s3.bucket)
    assert p.qik().ok
    other = tmp_path / "elsewhere" / "clone"
    subprocess.run(["git", "clone", "-q", str(p.root), str(other)], check=True)
    q = Project(other)
    q.env.update(CREDS)
    res = q.qik()
    assert res.ok and "1 cached" in res.err, res.text
    assert q.read("out/all.txt") == "alpha\n"


def test_corrupt_blob_is_a_miss_with_one_warning_then_heals(qik_project: Project, s3: S3) -> None:
    p = qik_project
    setup(p, s3.url, s3.bucket)
    assert p.qik().ok
    (blob,) = [k for k in s3.names() if "/blobs/" in k]
    s3.put(blob, b"poisoned\n")
    wipe(p)
    res = p.qik()
    assert res.ok and "1 ran" in res.err, res.text
    (warning,) = warnings(res.err)
    assert "ignored the entry of build" in warning and "digest" in warning
    assert p.read("out/all.txt") == "alpha\n"  # never the poisoned bytes
    # The run stored the entry again, overwriting the bad blob: the next checkout hits.
    assert s3.get(blob) == b"alpha\n"
    wipe(p)
    healed = p.qik()
    assert "1 cached" in healed.err and p.read("out/all.txt") == "alpha\n"


def test_missing_blob_is_a_miss(qik_project: Project, s3: S3) -> None:
    p = qik_project
    setup(p, s3.url, s3.bucket)
    assert p.qik().ok
    (blob,) = [k for k in s3.names() if "/blobs/" in k]
    s3.client.delete_object(Bucket=s3.bucket, Key=blob)
    wipe(p)
    res = p.qik()
    assert res.ok and "1 ran" in res.err, res.text
    assert len(warnings(res.err)) == 1 and "missing" in res.err


TWO = REMOTE_BUILD + """
[commands.other]
exec = "echo other"
deps = ["src/**.txt"]
cache = "remote"
"""


def test_server_down_runs_with_one_warning(qik_project: Project, own_server: Server) -> None:
    p = qik_project
    own_server.client().create_bucket(Bucket="down")
    setup(p, own_server.url, "down", cmds=TWO)
    assert p.qik().ok
    own_server.stop()
    wipe(p)
    res = p.qik()
    assert res.code == 0, res.text
    assert "2 ran" in res.err
    (warning,) = warnings(res.err)
    assert "cache remote" in warning and "running without the remote" in warning
    assert p.read("out/all.txt") == "alpha\n"


def test_read_only_reads_and_never_writes(qik_project: Project, s3: S3) -> None:
    p = qik_project
    top = 'ctx = [{name = "pr_job", default = "false"}]'
    setup(p, s3.url, s3.bucket, top=top, opts='read-only = "{ctx.pr_job}"')
    assert p.qik().ok  # a trusted job writes
    before = s3.names()
    assert before
    wipe(p)
    pr = {"PR_JOB": "true"}
    hit = p.qik(env=pr)
    assert "1 cached" in hit.err, hit.text  # and a pull-request job reads
    p.write("src/a.txt", "changed\n")
    ran = p.qik(env=pr)
    assert ran.ok and "1 ran" in ran.err
    assert s3.names() == before  # nothing written


SIGNED_TOP = 'ctx = [{name = "qik_key", default = ""}]'
SIGNED = 'signing-key = "{ctx.qik_key}"'


def test_signing_unsigned_and_tampered_manifests_are_ignored(qik_project: Project, s3: S3) -> None:
    p = qik_project
    setup(p, s3.url, s3.bucket)
    assert p.qik().ok  # a cache without a key: written unsigned
    p.write("qik.toml", p.read("qik.toml").replace('endpoint-url', f"{SIGNED}\nendpoint-url").replace("[plugins]", f"{SIGNED_TOP}\n[plugins]"))
    p.commit()
    wipe(p)
    key = {"QIK_KEY": "s3cret"}
    unsigned = p.qik(env=key)
    assert "1 ran" in unsigned.err and "signature" in unsigned.err, unsigned.text
    # That run stored the entry again, signed.
    (manifest,) = [k for k in s3.names() if k.endswith(".json")]
    data = json.loads(s3.get(manifest))
    assert len(data["sig"]) == 64
    wipe(p)
    good = p.qik(env=key)
    assert "1 cached" in good.err and not warnings(good.err), good.text

    data["log"] = "evil\n"
    s3.put(manifest, json.dumps(data).encode())
    wipe(p)
    res = p.qik(env=key)
    assert res.ok and "1 ran" in res.err, res.text
    assert "evil" not in res.out
    (warning,) = warnings(res.err)
    assert "signature" in warning


def test_an_empty_signing_key_never_gives_unsigned_hits(qik_project: Project, s3: S3) -> None:
    """A writer without the key is a configuration error; a read-only reader without it
    gets no remote hits, unless it accepts unverifiable entries explicitly."""
    p = qik_project
    top = 'ctx = [{name = "qik_key", default = ""}, {name = "ro", default = "false"}, {name = "req", default = "true"}]'
    setup(p, s3.url, s3.bucket, top=top, opts=SIGNED + '\nread-only = "{ctx.ro}"\nrequire-signature = "{ctx.req}"')
    writer = p.qik()
    assert writer.code == 2, writer.text
    assert "signing-key is configured but empty" in writer.err and "Traceback" not in writer.err
    assert p.qik(env={"QIK_KEY": "k"}).ok  # a trusted writer with the key
    wipe(p)
    reader = p.qik(env={"RO": "yes"})
    assert reader.ok and "1 ran" in reader.err, reader.text
    assert "remote entries are not used" in reader.err
    wipe(p)
    loose = p.qik(env={"RO": "on", "REQ": "no"})
    assert loose.ok and "1 cached" in loose.err, loose.text
    assert p.qik(env={"REQ": "false"}).code == 2  # only a read-only cache may say so


def test_manifest_escaping_the_project_is_ignored(qik_project: Project, s3: S3) -> None:
    p = qik_project
    setup(p, s3.url, s3.bucket)
    assert p.qik().ok
    (manifest,) = [k for k in s3.names() if k.endswith(".json")]
    data = json.loads(s3.get(manifest))
    data["artifacts"] = {"../escape.txt": data["artifacts"]["out/all.txt"]}
    s3.put(manifest, json.dumps(data).encode())
    wipe(p)
    res = p.qik()
    assert res.ok and "1 ran" in res.err, res.text
    assert 'the artifact path "../escape.txt" is not a plain relative path' in res.err
    assert not (p.root.parent / "escape.txt").exists()


def test_a_planted_entry_writes_nothing_outside_the_artifacts(qik_project: Project, s3: S3) -> None:
    """A bucket writer lists qikplugin.py (code the next qik would import) and a git hook
    beside the real artifact, reusing the digest of a real blob: nothing is restored."""
    p = qik_project
    setup(p, s3.url, s3.bucket)
    assert p.qik().ok
    (manifest,) = [k for k in s3.names() if k.endswith(".json")]
    data = json.loads(s3.get(manifest))
    real = data["artifacts"]["out/all.txt"]
    for path in ("qikplugin.py", ".git/hooks/pre-commit"):
        data["artifacts"] = {"out/all.txt": real, path: real | {"mode": 0o755}}
        s3.put(manifest, json.dumps(data).encode())
        wipe(p)
        res = p.qik()
        assert res.ok and "1 ran" in res.err, res.text
        (warning,) = warnings(res.err)
        assert "cache remote: ignored the entry of build" in warning, warning
        assert not p.path(path).exists()
