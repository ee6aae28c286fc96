"""The steady models by id: what each fault's registry rows refer to."""

from __future__ import annotations

from faults.models.steady.paced import SteadyModel


class Writer1(SteadyModel):
    """kill_persist: killed while it stores its outputs."""

    model_id = "writer_1"


class Writer2(SteadyModel):
    model_id = "writer_2"


class Writer3(SteadyModel):
    model_id = "writer_3"


class Writer4(SteadyModel):
    model_id = "writer_4"


class RelayA(SteadyModel):
    """db_restart: a chain relay_a -> relay_b -> relay_c whose registry restarts mid-cycle."""

    model_id = "relay_a"


class RelayB(SteadyModel):
    model_id = "relay_b"
    depends_on = ["relay_a"]


class RelayC(SteadyModel):
    model_id = "relay_c"
    depends_on = ["relay_b"]


class Beat(SteadyModel):
    """hung_shadow: a quick PRIMARY whose SHADOW sleeps past its timeout."""

    model_id = "beat"


class Echo(SteadyModel):
    model_id = "echo"
    depends_on = ["beat"]
