from wattwise.telemetry.prometheus.frames import node_classes_from_labels, workload_from_pod_name

INTEL_TDX = {"node": "n1", "label_feature_node_kubernetes_io_cpu_model_vendor_id": "GenuineIntel",
             "label_feature_node_kubernetes_io_cpu_cpuid_AMXTILE": "true",
             "label_feature_node_kubernetes_io_cpu_security_tdx_enabled": "true",
             "label_node_kubernetes_io_instance_type": ""}


def test_node_class_from_ksm_labels_goes_through_node_from_k8s():
    assert node_classes_from_labels({"n1": INTEL_TDX}) == {"n1": "intel-amx-tdx"}
    assert node_classes_from_labels({"n2": {"label_node_kubernetes_io_instance_type": "m7i.4xlarge"}}) == \
        {"n2": "m7i.4xlarge"}


def test_user_class_label_wins_in_either_spelling():
    labels = {**INTEL_TDX, "label_example_com_pool": "gold"}
    assert node_classes_from_labels({"n1": labels}, class_label="example.com/pool") == {"n1": "gold"}
    assert node_classes_from_labels({"n1": labels}, class_label="label_example_com_pool") == {"n1": "gold"}


def test_workload_from_pod_name_strips_controller_suffixes():
    assert workload_from_pod_name("video", "detector-5f7c9d8b4-x2kqz") == "video/detector"
    assert workload_from_pod_name("video", "agent-x2kqz") == "video/agent"
    assert workload_from_pod_name("video", "db-0") == "video/db"
    assert workload_from_pod_name("video", "solo") == "video/solo"
