"""nova's resource tracker as an oracle for tests/openstack/nova_oracle.rs.

Reads {"reserved_host_disk_mb": N, "instances": [{"root_gb", "ephemeral_gb", "swap_mb",
"boot_from_volume"}, ...]} on stdin and prints {"local_gb_used": N, "per_instance": [...]}: what
nova's own code books, with nova's own objects. It calls
ResourceTracker._get_usage_dict and ResourceTracker._update_usage
(nova/compute/resource_tracker.py) on a ComputeNode object (nova/objects/compute_node.py), after
the reset ResourceTracker._update_usage_from_instances makes (local_gb_used = reserve / 1024).
No database or service: the driver and the report client are mocks, and whether an instance
boots from a volume is put in the tracker's is_bfv cache, which _get_usage_dict reads first.
"""
import json
import sys
from unittest import mock

from nova import objects

objects.register_all()

import nova.conf  # noqa: E402
from nova.compute import resource_tracker  # noqa: E402

CONF = nova.conf.CONF
CONF([], project="nova", default_config_files=[])

request = json.load(sys.stdin)
CONF.set_override("reserved_host_disk_mb", request["reserved_host_disk_mb"])
tracker = resource_tracker.ResourceTracker(
    "oracle", mock.MagicMock(), reportclient=mock.MagicMock()
)
node = objects.ComputeNode(
    memory_mb=1 << 20, memory_mb_used=0, local_gb=1 << 20, local_gb_used=0,
    vcpus_used=0, free_ram_mb=0, free_disk_gb=0, running_vms=0, numa_topology=None,
)
tracker.compute_nodes["node"] = node
tracker.stats["node"] = mock.MagicMock(num_instances=0)
# What _update_usage_from_instances starts every update with.
node.local_gb_used = CONF.reserved_host_disk_mb / 1024
per_instance = []
for index, wanted in enumerate(request["instances"]):
    uuid = "00000000-0000-4000-8000-%012d" % index
    flavor = objects.Flavor(
        memory_mb=1, vcpus=1, root_gb=wanted["root_gb"],
        ephemeral_gb=wanted["ephemeral_gb"], swap=wanted["swap_mb"],
    )
    instance = objects.Instance(uuid=uuid, flavor=flavor, numa_topology=None)
    tracker.is_bfv[uuid] = wanted["boot_from_volume"]
    before = node.local_gb_used
    tracker._update_usage(tracker._get_usage_dict(instance, instance), "node")
    per_instance.append(node.local_gb_used - before)
print(json.dumps({"local_gb_used": node.local_gb_used, "per_instance": per_instance}))
