// CrampWatch sensor: reference firmware for the open BLE protocol v1 (see ../README.md).
//
// Hardware: ESP32 DevKit + one or two MyoWare 2.0 sensors, RAW outputs on ADC1 pins (ADC2 is unusable
// while the radio is on). Optional accelerometer: fill readAccel() and set ACC_RATE_HZ / ACC_G_PER_LSB.
// Toolchain: Arduino IDE or arduino-cli with the ESP32 core (2.x or 3.x); only the core's BLE library.
//
// Design: a FreeRTOS task samples at EMG_RATE_HZ with vTaskDelayUntil (the core's tick is 1 kHz) and
// queues timestamped samples; loop() batches EMG_PER_PACKET of them into one DATA notification with a
// per-type sequence number and the sensor clock (micros()) of the first sample. Sampling never stops,
// so sequence numbers and times stay truthful across disconnects; packets are only sent while a
// central has written CONTROL 0x01 (start) and is connected.

#include <BLE2902.h>
#include <BLEDevice.h>
#include <BLEServer.h>
#include <BLEUtils.h>

// ---- protocol v1 -----------------------------------------------------------------------------------
#define SERVICE_UUID "7e5c0001-ae23-4ca3-9eaa-7f6a4a62c3e8"
#define DATA_UUID    "7e5c0002-ae23-4ca3-9eaa-7f6a4a62c3e8"
#define CONTROL_UUID "7e5c0003-ae23-4ca3-9eaa-7f6a4a62c3e8"
#define INFO_UUID    "7e5c0004-ae23-4ca3-9eaa-7f6a4a62c3e8"
#define BATTERY_SERVICE_UUID ((uint16_t)0x180F)
#define BATTERY_LEVEL_UUID   ((uint16_t)0x2A19)

static const uint8_t PROTOCOL_VERSION = 1;
static const uint8_t TYPE_EMG = 0x01;
static const uint8_t TYPE_ACC = 0x02;

// ---- this build ------------------------------------------------------------------------------------
static const char *DEVICE_NAME = "CrampWatch-01";           // must start with "CrampWatch"
static const uint8_t EMG_CHANNELS = 2;                        // calf, tibialis anterior
static const int EMG_PINS[EMG_CHANNELS] = {34, 35};           // ADC1 pins
static const uint16_t EMG_RATE_HZ = 1000;
static const uint8_t EMG_PER_PACKET = 20;                     // 20 ms: 8 + 20*2*2 = 88 bytes
static const float EMG_UV_PER_LSB = 3.3e6f / 4096.0f / 200.0f;  // MyoWare 2.0 RAW (gain 200), 12-bit ADC
static const int16_t ADC_MID = 2048;                          // RAW is centred at Vs/2
static const uint16_t ACC_RATE_HZ = 0;                        // 0 = no accelerometer fitted
static const uint8_t ACC_PER_PACKET = 10;
static const float ACC_G_PER_LSB = 1.0f / 4096.0f;
static const int BATTERY_PIN = -1;                            // ADC pin on a 1:2 divider, -1 = not measured

// ---- sampling ---------------------------------------------------------------------------------------
struct EmgSample {
  uint32_t t_us;
  int16_t v[EMG_CHANNELS];
};
static QueueHandle_t emgQueue;

static void samplingTask(void *) {
  const TickType_t period = pdMS_TO_TICKS(1000 / EMG_RATE_HZ) > 0 ? pdMS_TO_TICKS(1000 / EMG_RATE_HZ) : 1;
  TickType_t last = xTaskGetTickCount();
  for (;;) {
    vTaskDelayUntil(&last, period);
    EmgSample s;
    s.t_us = (uint32_t)micros();
    for (uint8_t c = 0; c < EMG_CHANNELS; c++) {
      s.v[c] = (int16_t)(analogRead(EMG_PINS[c]) - ADC_MID);
    }
    if (xQueueSend(emgQueue, &s, 0) != pdTRUE) {
      // loop() is behind: the sample is lost here, and the sequence numbers cannot show it, so drop the
      // oldest instead of the newest to keep the timing of what is sent exact.
      EmgSample old;
      xQueueReceive(emgQueue, &old, 0);
      xQueueSend(emgQueue, &s, 0);
    }
  }
}

// Fill with your IMU driver (e.g. LSM6DS3 over I2C); counts in ACC_G_PER_LSB units.
static bool readAccel(int16_t xyz[3]) {
  (void)xyz;
  return false;
}

// ---- BLE --------------------------------------------------------------------------------------------
static BLEServer *server = nullptr;
static BLECharacteristic *dataChar = nullptr;
static BLECharacteristic *batteryChar = nullptr;
static volatile bool connected = false;
static volatile bool streaming = false;
static uint16_t seqEmg = 0, seqAcc = 0;

class ServerCallbacks : public BLEServerCallbacks {
  void onConnect(BLEServer *s, esp_ble_gatts_cb_param_t *param) override {
    connected = true;
    // Ask for a 7.5-15 ms connection interval (units of 1.25 ms), latency 0, timeout 4 s (units of 10 ms).
    esp_ble_conn_update_params_t p = {};
    memcpy(p.bda, param->connect.remote_bda, sizeof(esp_bd_addr_t));
    p.min_int = 6;
    p.max_int = 12;
    p.latency = 0;
    p.timeout = 400;
    esp_ble_gap_update_conn_params(&p);
  }
  void onDisconnect(BLEServer *s) override {
    connected = false;
    streaming = false;  // a new connection must send CONTROL 0x01 again
    BLEDevice::startAdvertising();
  }
};

class ControlCallbacks : public BLECharacteristicCallbacks {
  void onWrite(BLECharacteristic *c) override {
    // getData()/getLength(), not getValue(): the stop command is a single 0x00 byte.
    if (c->getLength() >= 1) {
      streaming = c->getData()[0] == 0x01;
    }
  }
};

static void packInfo(uint8_t out[14]) {
  out[0] = PROTOCOL_VERSION;
  out[1] = EMG_CHANNELS;
  memcpy(out + 2, &EMG_RATE_HZ, 2);
  memcpy(out + 4, &ACC_RATE_HZ, 2);
  memcpy(out + 6, &EMG_UV_PER_LSB, 4);
  memcpy(out + 10, &ACC_G_PER_LSB, 4);
}

static void setupBle() {
  BLEDevice::init(DEVICE_NAME);
  BLEDevice::setMTU(247);
  server = BLEDevice::createServer();
  server->setCallbacks(new ServerCallbacks());

  BLEService *service = server->createService(SERVICE_UUID);
  dataChar = service->createCharacteristic(DATA_UUID, BLECharacteristic::PROPERTY_NOTIFY);
  dataChar->addDescriptor(new BLE2902());
  BLECharacteristic *control = service->createCharacteristic(CONTROL_UUID, BLECharacteristic::PROPERTY_WRITE);
  control->setCallbacks(new ControlCallbacks());
  BLECharacteristic *info = service->createCharacteristic(INFO_UUID, BLECharacteristic::PROPERTY_READ);
  uint8_t infoBytes[14];
  packInfo(infoBytes);
  info->setValue(infoBytes, sizeof(infoBytes));
  service->start();

  BLEService *battery = server->createService(BLEUUID(BATTERY_SERVICE_UUID));
  batteryChar = battery->createCharacteristic(BLEUUID(BATTERY_LEVEL_UUID), BLECharacteristic::PROPERTY_READ);
  uint8_t level = 100;
  batteryChar->setValue(&level, 1);
  battery->start();

  BLEAdvertising *adv = BLEDevice::getAdvertising();
  adv->addServiceUUID(SERVICE_UUID);
  adv->setScanResponse(true);
  BLEDevice::startAdvertising();
}

static void notifyPacket(uint8_t type, uint8_t n, uint16_t seq, uint32_t t0, const int16_t *samples, uint8_t ch) {
  static uint8_t buf[8 + 2 * 255 * 8];
  buf[0] = type;
  buf[1] = n;
  memcpy(buf + 2, &seq, 2);
  memcpy(buf + 4, &t0, 4);
  memcpy(buf + 8, samples, 2 * n * ch);  // ESP32 is little-endian, as the protocol
  if (connected && streaming) {
    dataChar->setValue(buf, 8 + 2 * n * ch);
    dataChar->notify();
  }
}

// ---- main loop ----------------------------------------------------------------------------------------
void setup() {
  analogReadResolution(12);
  emgQueue = xQueueCreate(EMG_RATE_HZ / 2, sizeof(EmgSample));  // 0.5 s of slack
  setupBle();
  xTaskCreatePinnedToCore(samplingTask, "emg", 4096, nullptr, configMAX_PRIORITIES - 1, nullptr, 0);
}

void loop() {
  static int16_t emg[EMG_PER_PACKET * EMG_CHANNELS];
  static uint8_t have = 0;
  static uint32_t t0 = 0;
  EmgSample s;
  while (xQueueReceive(emgQueue, &s, pdMS_TO_TICKS(5)) == pdTRUE) {
    if (have == 0) {
      t0 = s.t_us;
    }
    memcpy(emg + have * EMG_CHANNELS, s.v, sizeof(s.v));
    if (++have == EMG_PER_PACKET) {
      notifyPacket(TYPE_EMG, have, seqEmg++, t0, emg, EMG_CHANNELS);  // seq counts packets produced
      have = 0;
    }
  }

  if (ACC_RATE_HZ > 0) {
    static int16_t acc[ACC_PER_PACKET * 3];
    static uint8_t accHave = 0;
    static uint32_t accT0 = 0, nextAcc = 0;
    uint32_t now = micros();
    if ((int32_t)(now - nextAcc) >= 0) {
      nextAcc = now + 1000000UL / ACC_RATE_HZ;
      int16_t xyz[3];
      if (readAccel(xyz)) {
        if (accHave == 0) {
          accT0 = now;
        }
        memcpy(acc + accHave * 3, xyz, sizeof(xyz));
        if (++accHave == ACC_PER_PACKET) {
          notifyPacket(TYPE_ACC, accHave, seqAcc++, accT0, acc, 3);
          accHave = 0;
        }
      }
    }
  }

  static uint32_t lastBattery = 0;
  if (BATTERY_PIN >= 0 && millis() - lastBattery > 60000) {
    lastBattery = millis();
    float volts = analogReadMilliVolts(BATTERY_PIN) * 2 / 1000.0f;  // 1:2 divider
    uint8_t level = (uint8_t)constrain((volts - 3.3f) / (4.2f - 3.3f) * 100.0f, 0.0f, 100.0f);
    batteryChar->setValue(&level, 1);
  }
}
