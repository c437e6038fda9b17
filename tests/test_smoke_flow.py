def test_the_whole_flow_from_ea_to_logs(api):
    user = api.user()
    deployment = api.deployment(user, "stopped")
    logs = api.get(f"deployments/{deployment['id']}/logs", user).get_json()
    assert [entry["job_type"] for entry in logs] == ["stop", "deploy"]
