import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATE_UNSPECIFIED: _ClassVar[State]
    NO_LEADER: _ClassVar[State]
    FOLLOWER: _ClassVar[State]
    LEADER: _ClassVar[State]
    LOST: _ClassVar[State]
STATE_UNSPECIFIED: State
NO_LEADER: State
FOLLOWER: State
LEADER: State
LOST: State

class LockRef(_message.Message):
    __slots__ = ("namespace", "name")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    name: str
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class CampaignRequest(_message.Message):
    __slots__ = ("lock", "identity", "lease_duration_seconds")
    LOCK_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    LEASE_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    lock: LockRef
    identity: str
    lease_duration_seconds: int
    def __init__(self, lock: _Optional[_Union[LockRef, _Mapping]] = ..., identity: _Optional[str] = ..., lease_duration_seconds: _Optional[int] = ...) -> None: ...

class ResignRequest(_message.Message):
    __slots__ = ("lock", "identity")
    LOCK_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    lock: LockRef
    identity: str
    def __init__(self, lock: _Optional[_Union[LockRef, _Mapping]] = ..., identity: _Optional[str] = ...) -> None: ...

class ResignResponse(_message.Message):
    __slots__ = ("was_leader",)
    WAS_LEADER_FIELD_NUMBER: _ClassVar[int]
    was_leader: bool
    def __init__(self, was_leader: _Optional[bool] = ...) -> None: ...

class ObserveRequest(_message.Message):
    __slots__ = ("lock",)
    LOCK_FIELD_NUMBER: _ClassVar[int]
    lock: LockRef
    def __init__(self, lock: _Optional[_Union[LockRef, _Mapping]] = ...) -> None: ...

class LeaderRequest(_message.Message):
    __slots__ = ("lock",)
    LOCK_FIELD_NUMBER: _ClassVar[int]
    lock: LockRef
    def __init__(self, lock: _Optional[_Union[LockRef, _Mapping]] = ...) -> None: ...

class LeaderResponse(_message.Message):
    __slots__ = ("leader",)
    LEADER_FIELD_NUMBER: _ClassVar[int]
    leader: Leader
    def __init__(self, leader: _Optional[_Union[Leader, _Mapping]] = ...) -> None: ...

class Leader(_message.Message):
    __slots__ = ("identity", "cluster", "fencing_token", "acquire_time")
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    FENCING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACQUIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    identity: str
    cluster: str
    fencing_token: int
    acquire_time: _timestamp_pb2.Timestamp
    def __init__(self, identity: _Optional[str] = ..., cluster: _Optional[str] = ..., fencing_token: _Optional[int] = ..., acquire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LeadershipEvent(_message.Message):
    __slots__ = ("lock", "state", "leader", "time", "reason", "validity")
    LOCK_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VALIDITY_FIELD_NUMBER: _ClassVar[int]
    lock: LockRef
    state: State
    leader: Leader
    time: _timestamp_pb2.Timestamp
    reason: str
    validity: Validity
    def __init__(self, lock: _Optional[_Union[LockRef, _Mapping]] = ..., state: _Optional[_Union[State, str]] = ..., leader: _Optional[_Union[Leader, _Mapping]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., validity: _Optional[_Union[Validity, _Mapping]] = ...) -> None: ...

class Validity(_message.Message):
    __slots__ = ("valid_until_monotonic_ns", "sent_monotonic_ns", "remaining")
    VALID_UNTIL_MONOTONIC_NS_FIELD_NUMBER: _ClassVar[int]
    SENT_MONOTONIC_NS_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    valid_until_monotonic_ns: int
    sent_monotonic_ns: int
    remaining: _duration_pb2.Duration
    def __init__(self, valid_until_monotonic_ns: _Optional[int] = ..., sent_monotonic_ns: _Optional[int] = ..., remaining: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...
