"""The gRPC Event message and the Avro Event record carry the same fields, so ingest converts losslessly."""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor

from kestrel.api.v1 import event_pb2, inference_pb2, ingest_pb2
from kestrel.common.avro import read_schema


def test_event_fields_match():
    avro = {field["name"] for field in read_schema("event")["fields"]}
    proto = {field.name for field in event_pb2.Event.DESCRIPTOR.fields}
    assert proto == avro


def test_event_time_is_a_timestamp_and_attributes_a_string_map():
    fields = event_pb2.Event.DESCRIPTOR.fields_by_name
    assert fields["event_time"].message_type.full_name == "google.protobuf.Timestamp"
    attributes = fields["attributes"].message_type
    assert attributes.GetOptions().map_entry
    assert attributes.fields_by_name["value"].type == FieldDescriptor.TYPE_STRING


def test_services_are_declared():
    ingest = ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].methods_by_name
    inference = inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].methods_by_name
    assert set(ingest) == {"Publish", "PublishBatch", "PublishStream"}
    assert ingest["PublishStream"].client_streaming and not ingest["PublishStream"].server_streaming
    assert set(inference) == {"Predict", "PredictBatch", "PredictStream"}
    assert inference["PredictStream"].client_streaming and inference["PredictStream"].server_streaming
