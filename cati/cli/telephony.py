"""``cati telephony …``: check the configured telephony backend; run the AMI simulator."""

from __future__ import annotations

import sys

import click


@click.group()
def telephony() -> None:
    """Telephony backend (Asterisk AMI, Twilio, simulated). 电话后端。"""


def _mask(value: str | None) -> str:
    """Whether a secret is set; never any part of it (not even its length)."""
    return "(set)" if value else "(not set)"


@telephony.command("check")
def check() -> None:
    """Connect, log in, ping and print what was found; exit 2 if unreachable or refused.

    连接、登录并 ping 电话后端；无法连接或凭据被拒时以非零状态退出。
    Configuration comes from the environment only (CATI_TELEPHONY, CATI_AMI_*, CATI_TWILIO_*).
    """
    from cati.config import SettingsError, load_settings
    from cati.telephony.base import TelephonyError
    from cati.telephony.factory import backend_from_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        click.echo(f"configuration error / 配置错误: {exc}", err=True)
        sys.exit(2)
    tel = settings.telephony
    kind = tel.backend
    click.echo(f"backend / 后端: {kind}")
    if kind == "asterisk":
        a = tel.ami
        click.echo(f"AMI: {a.host}:{a.port} user={a.username or '(not set)'} secret={_mask(a.secret)} "
                   f"client={a.client}" + (f" pbxes={a.pbxes}" if a.pbxes else ""))
    elif kind == "twilio":
        w = tel.twilio
        click.echo(f"Twilio: account={w.account_sid or '(not set)'} token={_mask(w.auth_token)} "
                   f"from={w.from_number or '(not set)'}")
    backend = None
    try:
        backend = backend_from_settings(tel, connect=True, public_url=settings.public_url)
        facts = backend.ping()
    except ValueError as exc:
        click.echo(f"configuration error / 配置错误: {exc}", err=True)
        sys.exit(2)
    except TelephonyError as exc:
        click.echo(f"FAILED / 失败: {exc}", err=True)
        sys.exit(2)
    finally:
        if backend is not None:
            backend.close()
    for key, value in facts.items():
        click.echo(f"  {key}: {value}")
    click.echo("OK / 正常")


@telephony.command("worker")
@click.option("--reconcile-every", default=60.0, type=float, show_default=True,
              help="seconds between reconciliations of unfinished attempts with the server")
@click.option("--pbx", default=None, help="with CATI_AMI_PBXES: the PBX this worker listens to (one worker each)")
@click.option("--team-queue", default=None,
              help="also run the predictive team dialer for this PBX queue (e.g. cati-predictive); it dials only "
                   "while the study's dialing mode is predictive")
def worker(reconcile_every: float, pbx: str | None, team_queue: str | None) -> None:
    """Store call events from Asterisk in the database (run exactly one per site).

    接收 Asterisk 通话事件并写入数据库（每个站点运行一个）。Web workers place calls with events off;
    this process listens, stores every event (idempotently) and ends attempts the server no longer has.
    """
    import signal
    import threading

    from cati.cli.common import get_app
    from cati.telephony.base import TelephonyError
    from cati.telephony.dialer import run_event_worker
    from cati.telephony.factory import backend_from_env

    app = get_app()
    factory = app.extensions["cati.db"]["sessionmaker"]
    from cati.config import SettingsError, load_settings

    try:
        pbxes = load_settings().telephony.ami.pbxes
    except SettingsError as exc:
        click.echo(f"FAILED / 失败: {exc}", err=True)
        sys.exit(2)
    if (pbxes or "").strip() and not pbx:
        click.echo("FAILED / 失败: several PBXs are configured (CATI_AMI_PBXES): run one worker per PBX with "
                   "--pbx NAME / 配置了多台交换机，请为每台交换机各运行一个 worker（--pbx）", err=True)
        sys.exit(2)
    try:
        backend = backend_from_env(pbx=pbx)
    except (ValueError, TelephonyError) as exc:
        click.echo(f"FAILED / 失败: {exc}", err=True)
        sys.exit(2)
    if not backend.name.startswith("asterisk"):
        click.echo(f"{backend.name}: no event worker needed (Twilio posts webhooks; simulated runs in process)")
        backend.close()
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"listening to AMI {backend.host}:{backend.port} ({backend.client_name}); Ctrl-C to stop")
    if team_queue:
        from cati.services.studies import get_study
        from cati.telephony.team_dialer import TeamDialer

        with factory() as s:
            study_id = get_study(s).id
        dialer = TeamDialer(factory, backend, study_id, team_queue)
        threading.Thread(target=dialer.run, args=(stop,), name="team-dialer", daemon=True).start()
        click.echo(f"team dialer on queue {team_queue} (predictive mode only) / 预测拨号团队队列 {team_queue}")
    try:
        run_event_worker(factory, backend, stop, reconcile_every=reconcile_every,
                         report=lambda n: click.echo(f"ended {n} attempt(s) no longer on the server"))
    except KeyboardInterrupt:
        pass
    finally:
        backend.close()


@telephony.command("test-call")
@click.option("--extension", required=True, help="the interviewer phone that takes the call")
@click.option("--number", required=True, help="the number to dial (E.164, e.g. +8613900000101)")
@click.option("--record", is_flag=True, help="record the call (the dialplan's MixMonitor)")
@click.option("--hangup-after", type=float, default=None,
              help="hang up this many seconds after the respondent is connected (default: wait for the far end)")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="give up after this many seconds")
@click.option("--ring-timeout", type=int, default=30, show_default=True, help="seconds the number may ring")
@click.option("--no-amd", is_flag=True, help="no answering-machine detection (the console uses it)")
def test_call(extension: str, number: str, record: bool, hangup_after: float | None, timeout: float,
              ring_timeout: int, no_amd: bool) -> None:
    """Place one call through the console's dialer path, charged to no case; print what happened.

    拨打一通测试电话（与访员控制台相同的拨号路径，不计入任何真实样本），打印结果。
    One line: outcome, source, cause, dial status, AMD, ringing, answered, ended, and the call's channels still
    up on the PBX 3 s after the end. Exit 0 when the call ended, 1 otherwise, 2 on a configuration error.
    Configuration from the environment (CATI_TELEPHONY, CATI_AMI_*; several PBXs: CATI_AMI_PBXES).
    """
    import tempfile

    from cati.telephony.base import TelephonyError
    from cati.telephony.factory import backend_from_env
    from cati.telephony.testcall import run_test_call, scratch_database

    digits = number.lstrip("+")
    if not digits.isdigit() or len(digits) < 3:
        click.echo(f"configuration error / 配置错误: --number {number!r} is not a phone number", err=True)
        sys.exit(2)
    try:
        backend = backend_from_env()
    except (ValueError, TelephonyError) as exc:
        click.echo(f"FAILED / 失败: {exc}", err=True)
        sys.exit(2)
    try:
        with tempfile.TemporaryDirectory(prefix="cati-test-call-") as tmp:
            _url, factory = scratch_database(tmp)
            result = run_test_call(backend, factory, number, extension, record=record, hangup_after=hangup_after,
                                   timeout=timeout, ring_timeout=ring_timeout, machine_detection=not no_amd)
            factory.kw["bind"].dispose()
    finally:
        backend.close()
    click.echo(result.line())
    if result.note and result.source == "system":
        click.echo(f"note / 说明: {result.note}", err=True)
    if result.recording:
        click.echo(f"recording / 录音: {result.recording}", err=True)
    sys.exit(0 if result.ended else 1)


@telephony.group("lab")
def lab() -> None:
    """A telephone network on this machine: real Asterisk PBX(es) and an outside world over SIP.

    本机电话实验网络：真实的 Asterisk 交换机与外部网络（SIP）。Needs the Asterisk build (../shared/asterisk/build.sh).
    """


@lab.command("start")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False), help="the lab's own directory")
@click.option("--pbx", "pbx_count", default=1, show_default=True, type=click.IntRange(1, 8), help="call-centre PBXs")
@click.option("--prefix", default=None, help="the Asterisk build (default /opt/cati-asterisk-22.10.1)")
def lab_start(directory: str, pbx_count: int, prefix: str | None) -> None:
    """Start the lab and print the environment that points cati at it."""
    from cati.telephony.lab import BEHAVIOURS, BUSY_PHONE, UNREACHABLE_PHONE, LabError, TelephoneLab

    try:
        lab_ = TelephoneLab(directory, pbx_count=pbx_count, prefix=prefix).start()
    except LabError as exc:
        click.echo(f"FAILED / 失败: {exc}", err=True)
        sys.exit(2)
    for i, pbx in enumerate(lab_.pbxes):
        click.echo(f"# {pbx.name}: SIP 127.0.0.1:{pbx.sip_port}, AMI 127.0.0.1:{pbx.ami_port}, pid {pbx.pid}")
        if i == 0:
            for k, v in lab_.ami_env(0).items():
                click.echo(f"export {k}={v}")
    click.echo(f"# outside world: SIP 127.0.0.1:{lab_.world.sip_port}, pid {lab_.world.pid}")
    for name, num in BEHAVIOURS.items():
        click.echo(f"#   {num}  {name}")
    click.echo(f"# phones: 1001-1040 and 9001-9005 answer; {BUSY_PHONE} busy; {UNREACHABLE_PHONE} unreachable")
    click.echo(f"# stop: cati telephony lab stop --dir {directory}")


@lab.command("stop")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False))
def lab_stop(directory: str) -> None:
    """Stop every instance of the lab by its PID."""
    from cati.telephony.lab import LabError, stop_lab

    try:
        n = stop_lab(directory)
    except LabError as exc:
        click.echo(f"FAILED / 失败: {exc}", err=True)
        sys.exit(2)
    click.echo(f"stopped {n} Asterisk instance(s) / 已停止 {n} 个实例")


@telephony.command("amisim")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5038, type=int)
@click.option("--time-scale", default=1.0, type=float, help="real seconds per simulated second")
def amisim(host: str, port: int, time_scale: float) -> None:
    """Run the AMI simulator (Asterisk 22 shaped) for manual trials. 运行 AMI 模拟器。"""
    from cati.telephony.amisim import main

    main(["--host", host, "--port", str(port), "--time-scale", str(time_scale)])
