"""Test-only mitmproxy addon: make the enforcer's decision function raise for
hosts containing 'fault', to prove that an error inside a hook fails closed."""

from __future__ import annotations

from mitmproxy import ctx


class FaultInjector:
    def running(self) -> None:
        enforcer = ctx.master.addons.get("enforcer")
        real = enforcer.decide

        def faulty(policy, facts):  # type: ignore[no-untyped-def]
            if any("fault" in host for host in facts.hosts):
                raise RuntimeError("injected fault")
            return real(policy, facts)

        enforcer.decide = faulty


addons = [FaultInjector()]
