"""A reply gRPC could not send because the caller had given up is one INFO line, not gRPC's
ERROR with a traceback (`ExecuteBatchError raised in core by servicer method [...]`, logged by
grpc's own `grpc._cython.cygrpc` logger after our handler has answered)."""

from __future__ import annotations

import logging

from wattwise.scaler.server import GRPC_LOGGER, CallerGoneFilter, quiet_caller_gone


def _grpc_error(message: str, *args) -> None:
    try:
        raise RuntimeError('Failed "execute_batch": (<SendInitialMetadataOperation>, <SendMessageOperation>)')
    except RuntimeError:
        logging.getLogger(GRPC_LOGGER).exception(message, *args)


def test_a_reply_to_a_caller_that_gave_up_is_one_info_line(caplog):
    quiet_caller_gone()
    quiet_caller_gone()                                     # installed once however often the server starts
    logger = logging.getLogger(GRPC_LOGGER)
    assert sum(isinstance(f, CallerGoneFilter) for f in logger.filters) == 1
    with caplog.at_level(logging.INFO):
        _grpc_error("ExecuteBatchError raised in core by servicer method [%s]", "/externalscaler.ExternalScaler/IsActive")
    [record] = [r for r in caplog.records if r.name == GRPC_LOGGER]
    assert record.levelno == logging.INFO and record.exc_info is None
    assert record.getMessage() == ("reply to /externalscaler.ExternalScaler/IsActive not sent: the caller had given "
                                   "up (deadline passed or connection closed) before gRPC sent it")
    assert "\n" not in caplog.text.strip()


def test_other_grpc_errors_pass_unchanged_and_the_line_follows_the_level(caplog):
    quiet_caller_gone()
    with caplog.at_level(logging.INFO):
        _grpc_error("Unexpected [%s] raised by servicer method [%s]", "ValueError", "/x/Y")
    [record] = [r for r in caplog.records if r.name == GRPC_LOGGER]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _grpc_error("ExecuteBatchError raised in core by servicer method [%s]", "/x/Y")
    assert [r for r in caplog.records if r.name == GRPC_LOGGER] == []
