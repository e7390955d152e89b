export {
  PROTOCOL_VERSION, SCHEMAS, LEAVE_CODES, ERROR_CODES, type LeaveCode, type ErrorCode, TENSOR_TYPES, ProtocolError, validateMessage, weightChecksum,
  type Message, type MessageType, type TensorMessage, type Hello, type Welcome, type State, type Assign, type Gradient, type Update, type Checksum, type Wait, type Leave, type ErrorMessage,
} from './messages.ts';
export { encodeFrame, decodeFrame, firstNonFinite, FRAME_VERSION, type Frame, type DecodeLimits } from './frame.ts';
export { WIRE_DTYPES, type WireDtype, f32ToBf16, bf16ToF32, f32ToF16, f16ToF32 } from './wire-dtype.ts';
