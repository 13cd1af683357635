"""``cati telephony …``: check the configured telephony backend; run the AMI simulator."""

from __future__ import annotations

import sys

import click


@click.group()
def telephony() -> None:
    """Telephony backend (Asterisk AMI, Twilio, simulated). 电话后端。"""


def _mask(value: str | None) -> str:
    if not value:
        return "(not set)"
    return value[:2] + "…" + f"({len(value)} chars)"


@telephony.command("check")
def check() -> None:
    """Connect, log in, ping and print what was found; exit 2 if unreachable or refused.

    连接、登录并 ping 电话后端；无法连接或凭据被拒时以非零状态退出。
    Configuration comes from the environment only (CATI_TELEPHONY, CATI_AMI_*, CATI_TWILIO_*).
    """
    import os

    from cati.telephony.base import TelephonyError
    from cati.telephony.factory import backend_from_env

    env = os.environ
    kind = (env.get("CATI_TELEPHONY") or "simulated").lower()
    click.echo(f"backend / 后端: {kind}")
    if kind == "asterisk":
        click.echo(f"AMI: {env.get('CATI_AMI_HOST') or '127.0.0.1'}:{env.get('CATI_AMI_PORT') or '5038'} "
                   f"user={env.get('CATI_AMI_USERNAME') or '(not set)'} secret={_mask(env.get('CATI_AMI_SECRET'))} "
                   f"client={env.get('CATI_AMI_CLIENT') or 'panoramisk'}")
    elif kind == "twilio":
        click.echo(f"Twilio: account={env.get('CATI_TWILIO_ACCOUNT_SID') or '(not set)'} "
                   f"token={_mask(env.get('CATI_TWILIO_AUTH_TOKEN'))} from={env.get('CATI_TWILIO_FROM') or '(not set)'}")
    backend = None
    try:
        backend = backend_from_env(env, connect=True)
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
def worker(reconcile_every: float) -> None:
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
    try:
        backend = backend_from_env()
    except (ValueError, TelephonyError) as exc:
        click.echo(f"FAILED / 失败: {exc}", err=True)
        sys.exit(2)
    if backend.name != "asterisk":
        click.echo(f"{backend.name}: no event worker needed (Twilio posts webhooks; simulated runs in process)")
        backend.close()
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"listening to AMI {backend.host}:{backend.port} ({backend.client_name}); Ctrl-C to stop")
    try:
        run_event_worker(factory, backend, stop, reconcile_every=reconcile_every,
                         report=lambda n: click.echo(f"ended {n} attempt(s) no longer on the server"))
    except KeyboardInterrupt:
        pass
    finally:
        backend.close()


@telephony.command("amisim")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5038, type=int)
@click.option("--time-scale", default=1.0, type=float, help="real seconds per simulated second")
def amisim(host: str, port: int, time_scale: float) -> None:
    """Run the AMI simulator (Asterisk 22 shaped) for manual trials. 运行 AMI 模拟器。"""
    from cati.telephony.amisim import main

    main(["--host", host, "--port", str(port), "--time-scale", str(time_scale)])
