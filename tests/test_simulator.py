"""The stand-in agent (`simulate-agent`) works the queue over real HTTP."""

from deployments_api.simulator import SimulatedAgent


def test_simulate_agent_once_compiles_a_pending_version(app, api, live_url):
    user = api.user()
    version = api.create_version(user)
    runner = app.test_cli_runner()

    result = runner.invoke(
        args=["simulate-agent", "--url", live_url, "--token", api.agent(), "--once", "--delay", "0"]
    )

    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "handled 1 job(s)"
    shown = api.get(f"ea-versions/{version['id']}", user).get_json()
    assert shown["status"] == "compiled"
    assert shown["artifact_storage_path"] == f"artifacts/{version['id']}.ex5"


def test_a_simulated_failure_fails_the_deployment_and_an_empty_queue_is_no_work(api, live_url):
    user = api.user()
    created = api.deploy(user).get_json()
    agent = SimulatedAgent(live_url, api.agent(), fail_rate=1.0, delay=0)

    assert agent.run(once=True) == 1
    shown = api.get(f"deployments/{created['deployment_id']}", user).get_json()
    assert shown["status"] == "error"
    assert shown["last_error"] == "simulated deploy failure"
    assert agent.run(once=True) == 0


def test_a_successful_deploy_reports_plausible_trades(api, live_url):
    user = api.user()
    created = api.deploy(user).get_json()

    assert SimulatedAgent(live_url, api.agent(), delay=0).run(once=True) == 1

    shown = api.get(f"deployments/{created['deployment_id']}", user).get_json()
    assert shown["status"] == "running"
    assert 1 <= shown["trade_count"] <= 3
